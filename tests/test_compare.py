"""Compare: the word diff on known texts, run parsing, the summary table, scheduling (local runs one
after another, server runs at once), and two tiny twins plus classic through the app."""
from __future__ import annotations

import threading
import time

import pytest

from pipelines import PageResult, PipelineError
from pipelines.compare import TIMING_KEYS, Column, Comparison, Run, compare_page, parse_runs, text_diff
from pipelines.schema import Element


def test_word_diff_of_known_texts():
    diff = text_diff("Total: 12.50 EUR\nDate: 3 May 2024", "Total: 12.80 EUR\nDate: 3 May 2024\nPaid")
    assert diff.pieces == [("equal", "Total: "), ("delete", "12.50"), ("insert", "12.80"),
                           ("equal", " EUR\nDate: 3 May 2024"), ("insert", "\nPaid")]
    # 6 of the 7 + 8 words match: 2 * 6 / 15.
    assert diff.similarity == 0.8
    assert diff.html == ('<div class="text-diff">Total: <del>12.50</del><span class="diff-insert">12.80</span>'
                         ' EUR<br>Date: 3 May 2024<span class="diff-insert"><br>Paid</span></div>')


def test_diff_html_escapes_what_the_models_wrote():
    diff = text_diff("a <b>x</b>", "a <script>alert(1)</script> & b")
    assert diff.pieces == [("equal", "a "), ("delete", "<b>x</b>"), ("insert", "<script>alert(1)</script> & b")]
    assert diff.html == ('<div class="text-diff">a <del>&lt;b&gt;x&lt;/b&gt;</del><span class="diff-insert">'
                         '&lt;script&gt;alert(1)&lt;/script&gt; &amp; b</span></div>')
    assert text_diff("same", "same").pieces == [("equal", "same")] and text_diff("same", "same").similarity == 1.0


def test_diff_of_parsed_pages_shows_each_character_escaped_once():
    """Column Markdown spells "<" as "&lt;" (it is Markdown); the diff shows what a reader sees, "<"."""
    from pipelines.render.markdown import page_markdown

    def column(text: str) -> Column:
        result = PageResult(page=0, width=100, height=100, model="m", mode="text_only",
                            elements=[Element((0, 0, 100, 100), "Text", text)])
        result.markdown = page_markdown(result)  # as the pipeline does
        return Column(Run("classic", "text_only"), "classic", result)

    comparison = Comparison("x.png", 0, 100, 100, [column("a <script>x</script> & b"), column("a <b> & c ![i](u)")])
    diff = comparison.diff(0, 1)
    assert diff.pieces == [("equal", "a "), ("delete", "<script>x</script>"), ("insert", "<b>"), ("equal", " & "),
                           ("delete", "b"), ("insert", "c ![i](u)")]
    assert diff.html == ('<div class="text-diff">a <del>&lt;script&gt;x&lt;/script&gt;</del>'
                         '<span class="diff-insert">&lt;b&gt;</span> &amp; <del>b</del>'
                         '<span class="diff-insert">c ![i](u)</span></div>')
    assert "&amp;lt;" not in diff.html


def test_runs_are_checked_against_the_catalogue():
    assert parse_runs(["classic:layout_all", "got_ocr_hf:text_only", "qwen2_vl_2b"]) == [
        Run("classic", "layout_all"), Run("got_ocr2", "text_only"), Run("qwen2_vl_2b", "text_only")]
    cases = {("classic:layout_all",): "bad_runs", ("classic:layout_all",) * 2: "bad_runs",
             ("classic:layout_all", "classic:text_only", "classic:layout_only", "got_ocr2:text_only",
              "florence2:text_only"): "bad_runs",
             ("classic:layout_all", "nobody:text_only"): "unknown_model",
             ("classic:layout_all", "classic:region_text"): "mode_not_supported"}
    for runs, code in cases.items():
        with pytest.raises(PipelineError) as error:
            parse_runs(list(runs))
        assert error.value.code == code, runs


def page_result(model: str, elements: list[Element], timings: dict, generated: int = 0) -> PageResult:
    return PageResult(page=0, width=100, height=200, model=model, mode="text_only", elements=elements,
                      markdown="\n\n".join(e.text for e in elements), timings=timings,
                      tokens={"prompt": 10, "generated": generated})


def test_summary_table_and_timings_of_known_results():
    vlm = Column(Run("got_ocr2", "text_only"), "transformers", page_result(
        "got_ocr2", [Element((0, 0, 100, 200), "Text", "Hello | world")],
        {"load_s": 1.5, "first_token_s": 0.25, "generate_s": 2.0, "total_s": 2.5}, generated=50))
    ocr = Column(Run("classic", "layout_all"), "classic", page_result(
        "classic", [Element((0, 0, 50, 20), "Title", "Hi"), Element((0, 30, 50, 60), "Text", "x")],
        {"load_s": 0.0, "layout_s": 0.1, "total_s": 0.75}))
    failed = Column(Run("lighton_ocr", "text_only"), "transformers", error="weights not found")
    comparison = Comparison("scan.png", 0, 100, 200, [vlm, ocr, failed])
    assert vlm.timings == {"load_s": 1.5, "first_token_s": 0.25, "total_s": 2.5, "tokens_per_s": 25.0}
    assert ocr.timings == {"load_s": 0.0, "first_token_s": None, "total_s": 0.75, "tokens_per_s": None}
    assert failed.timings == dict.fromkeys(TIMING_KEYS)
    assert ocr.counts == {"Text": 1, "Title": 1}
    assert comparison.markdown_table() == (
        "Comparison of page 1 of scan.png (100 x 200 px)\n\n"
        "| run | engine | elements | characters | load (s) | first token (s) | total (s) | tokens/s | status |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        "| got_ocr2 · Text only | transformers | 1 | 13 | 1.5 | 0.25 | 2.5 | 25.0 | ok |\n"
        "| classic · Layout + text | classic | 2 | 5 | 0.0 | – | 0.75 | – | ok |\n"  # the Markdown "Hi", a blank line, "x"
        "| lighton_ocr · Text only | transformers | 0 | 0 | – | – | – | – | error: weights not found |\n"
        "\nElements by category:\n\n"
        "- got_ocr2 · Text only: Text 1\n- classic · Layout + text: Text 1, Title 1\n- lighton_ocr · Text only: none\n")
    assert ocr.summary_markdown() == "load 0.00 s · total 0.75 s\n\nElements: Text 1, Title 1"
    assert failed.summary_markdown() == "**Failed:** weights not found"
    assert comparison.to_dict()["diff"]["html"] == comparison.diff(0, 1).html


class FakeEngine:
    def __init__(self, name: str):
        self.name = name


class Gathering:
    """Runs of the named models each wait until `size` of them have started (or 10 s pass), so
    runs that the scheduler sends together surely overlap, whatever the machine's load; runs
    sent one after another wait out the 10 s and do not."""

    def __init__(self, keys: set[str], size: int, timeout_s: float = 10):
        self.keys, self.size, self.started, self.timeout_s = keys, size, 0, timeout_s
        self.condition = threading.Condition()

    def wait(self, key: str) -> None:
        if key not in self.keys:
            time.sleep(0.05)
            return
        with self.condition:
            self.started += 1
            self.condition.notify_all()
            self.condition.wait_for(lambda: self.started >= self.size, timeout=self.timeout_s)


class FakePipeline:
    """Records when each run's parse started and ended."""

    def __init__(self, key: str, engine: str, log: list, lock: threading.Lock, gathering: Gathering | None = None):
        self.key, self.engine, self.log, self.lock = key, FakeEngine(engine), log, lock
        self.gathering = gathering or Gathering(set(), 0)

    def parse_pages(self, document, mode, options):
        from pipelines import DocumentResult

        started = time.monotonic()
        self.gathering.wait(self.key)
        with self.lock:
            self.log.append((self.key, started, time.monotonic()))
        page = document.pages[0]
        result = PageResult(page=0, width=page.size[0], height=page.size[1], model=self.key, mode=mode,
                            timings={"load_s": 0.0, "total_s": 0.3})
        return DocumentResult(source="x", model=self.key, mode=mode, pages=[result])


def test_local_runs_go_one_after_another_and_server_runs_at_once(monkeypatch):
    from PIL import Image

    import pipelines.pipeline
    from pipelines.catalogue import get_spec
    from pipelines.documents import Page

    log: list = []
    lock = threading.Lock()
    engines = {"classic": "classic", "got_ocr2": "transformers", "qwen2_vl_2b": "openai", "qwen3_vl_2b": "openai"}
    gathering = Gathering({"classic", "qwen2_vl_2b", "qwen3_vl_2b"}, 3)  # the ones that may run at once
    monkeypatch.setattr(pipelines.pipeline, "load_pipeline", lambda model: FakePipeline(
        get_spec(model).key, engines[get_spec(model).key], log, lock, gathering))
    runs = parse_runs(["classic:layout_all", "got_ocr2:text_only", "qwen2_vl_2b:text_only", "qwen3_vl_2b:text_only"])
    finished = []
    comparison = compare_page(Page(Image.new("RGB", (40, 60), "white"), 0), runs,
                              on_column=lambda index, column: finished.append(index))
    spans = {key: (start, end) for key, start, end in log}
    assert spans["classic"][1] <= spans["got_ocr2"][0]  # local: in the order asked, never overlapping
    server = sorted((spans["qwen2_vl_2b"], spans["qwen3_vl_2b"]))
    assert server[0][1] > server[1][0]  # the two server runs overlap
    assert server[0][1] > spans["classic"][0] and server[0][0] < spans["classic"][1]  # and run beside the local ones
    assert sorted(finished) == [0, 1, 2, 3]
    assert [c.engine for c in comparison.columns] == ["classic", "transformers", "openai", "openai"]


def test_runs_of_one_local_model_go_together_after_the_model_before(monkeypatch):
    """Two modes of one local model run at once (its batcher decodes them as one batch); the
    other local model's run comes first, never overlapping them."""
    from PIL import Image

    import pipelines.pipeline
    from pipelines.catalogue import get_spec
    from pipelines.documents import Page

    log: list = []
    lock = threading.Lock()
    engines = {"classic": "classic", "got_ocr2": "transformers"}
    gathering = Gathering({"got_ocr2"}, 2)
    monkeypatch.setattr(pipelines.pipeline, "load_pipeline", lambda model: FakePipeline(
        get_spec(model).key, engines[get_spec(model).key], log, lock, gathering))
    runs = parse_runs(["classic:layout_all", "got_ocr2:text_only", "got_ocr2:text_formatted"])
    compare_page(Page(Image.new("RGB", (40, 60), "white"), 0), runs)
    classic = next((start, end) for key, start, end in log if key == "classic")
    got = sorted((start, end) for key, start, end in log if key == "got_ocr2")
    assert len(got) == 2 and classic[1] <= got[0][0]
    assert got[0][1] > got[1][0]  # the two runs of one model overlap


def test_runs_of_classic_go_one_after_another_so_each_time_is_its_own(monkeypatch):
    """classic reads one page at a time: run together, the second run's time would include its
    wait for the first."""
    from PIL import Image

    import pipelines.pipeline
    from pipelines.documents import Page

    log: list = []
    lock = threading.Lock()
    gathering = Gathering({"classic"}, 2, timeout_s=2)  # runs sent together would overlap; in turn, each waits 2 s
    monkeypatch.setattr(pipelines.pipeline, "load_pipeline", lambda model: FakePipeline(
        "classic", "classic", log, lock, gathering))
    compare_page(Page(Image.new("RGB", (40, 60), "white"), 0), parse_runs(["classic:layout_all", "classic:text_only"]))
    first, second = sorted((start, end) for _, start, end in log)
    assert first[1] <= second[0]


def test_runs_go_through_the_pipeline_the_caller_picks():
    """compare_page(pipeline_for=...): the UI's session server choice decides where every run goes."""
    from PIL import Image

    from pipelines.catalogue import get_spec
    from pipelines.documents import Page

    log: list = []
    asked: list[str] = []

    def pipeline_for(model):
        asked.append(get_spec(model).key)
        return FakePipeline(get_spec(model).key, "openai", log, threading.Lock())

    runs = parse_runs(["qwen2_vl_2b:text_only", "qwen3_vl_2b:text_only"])
    comparison = compare_page(Page(Image.new("RGB", (40, 60), "white"), 0), runs, pipeline_for=pipeline_for)
    assert sorted(set(asked)) == ["qwen2_vl_2b", "qwen3_vl_2b"]
    assert [c.engine for c in comparison.columns] == ["openai", "openai"]
    spans = sorted((start, end) for _, start, end in log)
    assert spans[0][1] > spans[1][0]  # server runs: at the same time


# -- two tiny twins plus classic, through the app --------------------------------------------------

RUNS = ["qwen2_vl_2b:text_only", "got_ocr2:text_only", "classic:layout_all"]


@pytest.fixture(scope="module")
def feature():
    from tests.feature_app import shared_feature_app

    return shared_feature_app()


def test_two_twins_and_classic_give_three_columns_with_timings(feature):
    from gradio_client import Client, handle_file

    client = Client(feature.url, verbose=False)
    try:
        first = client.predict(handle_file(str(feature.png)), RUNS, 1, 8, api_name="/compare")
        again = client.predict(handle_file(str(feature.png)), RUNS, 1, 8, api_name="/compare")
    finally:
        client.close()
    assert [(c["model"], c["mode"]) for c in first["columns"]] == [tuple(r.split(":")) for r in RUNS]
    assert (first["width"], first["height"]) == (620, 877)
    for column in first["columns"]:
        assert column["error"] is None, column["error"]
        timings, result = column["timings"], column["result"]
        assert set(timings) == set(TIMING_KEYS)
        assert timings["load_s"] >= 0 and timings["total_s"] > 0
        assert sum(column["counts"].values()) == len(result["elements"]) > 0
        if column["engine"] == "transformers":
            generated = result["tokens"]["generated"]
            assert 0 < generated <= 8
            assert 0 < timings["first_token_s"] <= timings["total_s"]
            assert timings["tokens_per_s"] == pytest.approx(generated / result["timings"]["generate_s"])
        else:
            assert column["engine"] == "classic"
            assert timings["first_token_s"] is None and timings["tokens_per_s"] is None
    # Run again: every model is still loaded, nothing loads twice.
    assert [c["timings"]["load_s"] for c in again["columns"]] == [0.0, 0.0, 0.0]
    assert first["diff"]["a"] == 0 and first["diff"]["b"] == 1 and first["diff"]["html"].startswith('<div class="text-diff">')
