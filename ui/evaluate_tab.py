"""The Evaluate tab: score runs on documents with olmOCR-bench tests and page ground truth (the
project's example set, or uploaded files), see the scores, filter the failures and open one
beside the page and what the run wrote."""
from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr

from pipelines import PipelineError
from pipelines.compare import MAX_RUNS
from pipelines.documents import DOCUMENT_SUFFIXES
from pipelines.evaluation import evaluate
from pipelines.evaluation.runner import find_document, output_path, EvalRun
from pipelines.evaluation.unit_tests import TYPES, load_tests
from ui.common import (
    ASSETS, load_page, model_event, new_work_dir, ModelLists, run_choices_noted, save_image, user_error,
)

EXAMPLE_TESTS = ASSETS / "eval" / "tests.jsonl"
EXAMPLE_TRUTH = ASSETS / "eval" / "truth"
# A public demo bounds the work one click may ask for.
MAX_FILES, MAX_PAGES = 30, 12
SCORE_HEADERS = ["run", "tests", "pass rate", *TYPES[:-1], "truth similarity", "OmniDocBench text", "reading order",
                 "table TEDS"]
FAILURE_HEADERS = ["run", "id", "type", "document", "page", "explanation"]
EXPECTED_FIELDS = ("text", "before", "after", "cell", "up", "down", "left", "right", "top_heading", "left_heading")


def _percent(value) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _stage_uploads(files: list[str]) -> tuple[Path, Path | None, Path]:
    """Copy the uploads into a fresh folder: documents and ground truth side by side, the one
    tests file (.jsonl) apart. Names are reduced to their last part."""
    if len(files) > MAX_FILES:
        raise gr.Error(f"At most {MAX_FILES} files at a time.")
    work = new_work_dir()
    docs = work / "docs"
    docs.mkdir()
    tests = None
    for file in files:
        name = Path(file).name
        suffix = Path(name).suffix.lower()
        if suffix == ".jsonl":
            if tests is not None:
                raise gr.Error("Upload one tests file (.jsonl).")
            tests = work / "tests.jsonl"
            shutil.copyfile(file, tests)
        elif suffix in (".md", ".txt", *DOCUMENT_SUFFIXES):
            shutil.copyfile(file, docs / name)
        else:
            raise gr.Error(f"{name}: upload documents (PDF or image), a tests file (.jsonl) or ground truth (.md, .txt).")
    return docs, tests, work


def run_evaluation(use_examples: bool, files, runs, language: str = ""):
    """Scores table, failures table, state (for the details), run filter choices."""
    if not runs:
        raise gr.Error("Choose at least one run.")
    if len(runs) > MAX_RUNS:
        raise gr.Error(f"At most {MAX_RUNS} runs at a time.")
    try:
        if use_examples:
            docs, tests, truth, work = ASSETS, EXAMPLE_TESTS, EXAMPLE_TRUTH, new_work_dir()
        else:
            if not files:
                raise gr.Error("Upload documents with a tests file or ground truth, or use the example set.")
            docs, tests, work = _stage_uploads(files)
            truth = None
        chosen = [f"{run}:{language.strip()}" if language and language.strip() else run for run in runs]
        report = evaluate(chosen, docs, work / "outputs", tests, truth, max_pages=MAX_PAGES)
    except gr.Error:
        raise
    except Exception as error:  # noqa: BLE001 - ours shown as they are, anything else logged
        raise user_error(error, "Evaluating") from None
    scores = [[r["run"], sum(t["passed"] is not None for t in r["tests"]), _percent(r["pass_rate"]),
               *(_percent(r["by_type"].get(kind)) for kind in TYPES[:-1]), _percent(r.get("truth_similarity")),
               *(_percent(r.get("omnidocbench", {}).get(key)) for key in ("text", "reading_order", "table_teds"))]
              for r in report["runs"]]
    state = {"docs": str(docs), "tests": str(tests) if tests else "", "out": str(work / "outputs"), "report": report}
    run_names = ["all runs"] + [r["run"] for r in report["runs"]]
    return scores, failures(state, "all runs", "all types"), state, gr.update(choices=run_names, value="all runs")


def failures(state: dict | None, run: str, kind: str) -> list[list]:
    if not state:
        return []
    return [[r["run"], t["id"], t["type"], t["pdf"], t["page"], t["explanation"]]
            for r in state["report"]["runs"] if run in ("all runs", r["run"])
            for t in r["tests"] if t["passed"] is False and kind in ("all types", t["type"])]


def show_failure(state: dict | None, shown: list[list] | None, event: gr.SelectData):
    """The page, the run's Markdown and what the test expected, for the clicked failure."""
    if not state or shown is None or event.index is None:
        return None, "", ""
    rows = shown.values.tolist() if hasattr(shown, "values") else shown
    row_index = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
    if not 0 <= row_index < len(rows):
        return None, "", ""
    run_key, test_id, _, pdf, page = rows[row_index][:5]
    docs = Path(state["docs"])
    try:
        document = find_document(pdf, docs)
        image = save_image(load_page(str(document), int(page)).image, "evaluated_page.png")
        written = output_path(Path(state["out"]), EvalRun.parse(run_key), document, int(page))
        markdown = written.read_text(encoding="utf-8") if written.is_file() else "(the page could not be parsed)"
    except (PipelineError, gr.Error, OSError) as error:
        return None, "", f"Cannot show this page: {getattr(error, 'message', error)}"
    test = next((t for t in load_tests(state["tests"]) if t.id == test_id), None) if state["tests"] else None
    expected = "" if test is None else "\n".join(
        f"**{name}**: {getattr(test, name)}" for name in EXPECTED_FIELDS if getattr(test, name))
    explanation = next((t["explanation"] for r in state["report"]["runs"] if r["run"] == run_key
                        for t in r["tests"] if t["id"] == test_id), "")
    return image, markdown, f"**{test_id}** ({run_key}): {explanation}\n\n{expected}"


def build_evaluate_tab(model_lists: ModelLists) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            use_examples = gr.Checkbox(True, label="Use the project's example set (assets/eval: 29 tests, two "
                                                   "ground-truth pages)", elem_id="eval-examples")
            files = gr.File(label=f"Or upload: documents, one tests file (.jsonl), ground truth (.md/.txt); "
                                  f"at most {MAX_FILES} files, {MAX_PAGES} pages",
                            file_count="multiple", type="filepath", elem_id="eval-files")
        with gr.Column(scale=1):
            runs = gr.Dropdown(run_choices_noted(), value=["classic:layout_all"], multiselect=True, max_choices=MAX_RUNS,
                               label=f"Runs: 1 to {MAX_RUNS} models or modes", elem_id="eval-runs")
            model_lists.add(runs, run_choices_noted)
            language = gr.Textbox("", label="Language for classic runs (Tesseract codes, e.g. rus+eng; optional)")
            run = gr.Button("Evaluate", variant="primary", elem_id="eval-button")
    scores = gr.Dataframe(headers=SCORE_HEADERS, interactive=False, label="Scores", elem_id="eval-scores")
    with gr.Row():
        run_filter = gr.Dropdown(["all runs"], value="all runs", label="Failures of", scale=1)
        type_filter = gr.Dropdown(["all types", *TYPES[:-1]], value="all types", label="Type", scale=1)
    failed = gr.Dataframe(headers=FAILURE_HEADERS, interactive=False, label="Failed tests (click one to see it)",
                          elem_id="eval-failures")
    with gr.Row(equal_height=False):
        page_image = gr.Image(type="filepath", label="Page", elem_id="eval-page")
        with gr.Column():
            expected = gr.Markdown(elem_id="eval-expected")
            written = gr.Code(language="markdown", label="What the run wrote", elem_id="eval-output")
    state = gr.State(None)

    private = {"api_visibility": "private"}
    run.click(model_event(run_evaluation), [use_examples, files, runs, language],
              [scores, failed, state, run_filter], concurrency_limit=1, **private)
    for control in (run_filter, type_filter):
        control.change(failures, [state, run_filter, type_filter], failed, **private)
    failed.select(show_failure, [state, failed], [page_image, written, expected], **private)
