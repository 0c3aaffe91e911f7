"""The Compare tab and the /compare endpoint: one page through 2-4 runs, side by side."""
from __future__ import annotations

import queue
import threading
from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData

from pipelines import ParseOptions, PipelineError, load_document
from pipelines.compare import MAX_RUNS, Comparison, compare_page, parse_runs
from pipelines.render.draw import draw_elements
from pipelines.render.markdown import data_url_picture_ref, page_markdown
from pipelines.engines.openai_engine import session_base_urls
from ui.common import (
    model_event, ModelLists, run_choices_noted, run_with_stop, stop_cancels, uploaded_file,
    LATEX, MODEL_EVENTS, PAGE_TIME_LIMIT_S, UPLOAD_TYPES, new_work_dir, load_page, save_image, session_pipeline,
    user_error,
)


def compare_views(page, column, index: int):
    """Header, annotated page, rendered Markdown and stats of one column."""
    header = f"### {column.run.label}"
    if column.result is None:
        return header, None, "", column.summary_markdown()
    marked = save_image(draw_elements(page.image, column.result.elements), f"compare_{index + 1}.png")
    rendered = page_markdown(column.result, data_url_picture_ref(page.image))
    return header, marked, rendered, column.summary_markdown()


def compare_ui(file_path, page_number, runs, max_new_tokens, server_urls="", served_model=""):
    """Run the page through every chosen run; each column fills in as its run finishes.

    Outputs: summary, then per column (MAX_RUNS of each) group, header, image, Markdown, stats,
    then diff choice A, diff choice B, diff, export files, comparison state."""
    try:
        chosen = parse_runs(runs or [])
        session_base_urls(server_urls)  # a refused URL is an error now, not in every column
    except PipelineError as error:
        raise gr.Error(error.message) from None
    page = load_page(file_path, page_number)
    stop = threading.Event()
    options = ParseOptions(max_new_tokens=int(max_new_tokens) if max_new_tokens else None,
                           time_limit_s=PAGE_TIME_LIMIT_S, stop=stop)
    finished: queue.Queue = queue.Queue()
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["comparison"] = compare_page(
                page, chosen, source=Path(file_path).name, options=options,
                on_column=lambda index, column: finished.put((index, column)),
                pipeline_for=lambda model: session_pipeline(model, server_urls, served_model))
        except BaseException as error:  # noqa: BLE001 - reported below
            outcome["error"] = error
        finally:
            finished.put(None)

    views = [(f"### {chosen[i].label}\n\nrunning…", None, "", "") if i < len(chosen) else ("", None, "", "")
             for i in range(MAX_RUNS)]
    groups = [gr.update(visible=i < len(chosen)) for i in range(MAX_RUNS)]

    def frame(summary=gr.skip(), tail=(gr.skip(),) * 5):
        return (summary, *groups, *(v[0] for v in views), *(v[1] for v in views), *(v[2] for v in views),
                *(v[3] for v in views), *tail)

    threading.Thread(target=work, name="compare", daemon=True).start()
    try:
        yield frame()
        while (item := finished.get()) is not None:
            index, column = item
            views[index] = compare_views(page, column, index)
            yield frame()
    finally:
        stop.set()  # Stop pressed or the user left: the running generation ends early
    if "error" in outcome:
        raise user_error(outcome["error"], "Comparing")
    comparison = outcome["comparison"]
    labels = [(f"{i + 1}. {c.run.label}", i) for i, c in enumerate(comparison.columns)]
    work_dir = new_work_dir()
    exports = [work_dir / "comparison.json", work_dir / "comparison.md"]
    exports[0].write_text(comparison.to_json(), encoding="utf-8")
    exports[1].write_text(comparison.markdown_table(), encoding="utf-8")
    yield frame(comparison.summary_rows(), (
        gr.update(choices=labels, value=0), gr.update(choices=labels, value=1),
        diff_markdown(comparison.diff(0, 1)), [str(p) for p in exports], comparison))


def diff_markdown(diff) -> str:
    return f"<p>Similarity (words): {diff.similarity:.1%}</p>{diff.html}"


def compare_diff(comparison: Comparison | None, a, b):
    if comparison is None or a is None or b is None:
        return ""
    return diff_markdown(comparison.diff(int(a), int(b)))


def compare_api(file: FileData, runs: list[str], page: int = 1, max_new_tokens: int = 0) -> dict:
    """One page (1-based) through 2-4 runs ("model:mode", e.g. "classic:layout_all"): per run its
    page result, timings (load_s, first_token_s, total_s, tokens_per_s) and element counts, plus a
    word diff of the first two runs' Markdown."""
    try:
        chosen = parse_runs(runs)
        path = uploaded_file(file)
        document = load_document(path, pages=str(page), name=Path(path).name)
        options = ParseOptions(max_new_tokens=max_new_tokens or None, time_limit_s=PAGE_TIME_LIMIT_S)
        return compare_page(document.pages[0], chosen, source=document.name, options=options).to_dict()
    except Exception as error:  # noqa: BLE001
        raise user_error(error, "Comparing") from None


def build_compare_tab(model_lists: ModelLists, server: list[gr.Textbox]) -> gr.File:
    with gr.Row():
        with gr.Column(scale=1):
            compare_file = gr.File(label="Image or PDF", file_types=UPLOAD_TYPES, type="filepath",
                                   elem_id="compare-file")
            page_number = gr.Number(1, label="Page", precision=0, minimum=1)
        with gr.Column(scale=2):
            runs = gr.Dropdown(run_choices_noted(), value=["classic:layout_all", "classic:text_only"], multiselect=True, max_choices=MAX_RUNS,
                               label=f"Runs: 2 to {MAX_RUNS} models or modes", elem_id="compare-runs")
            model_lists.add(runs, run_choices_noted)
            with gr.Accordion("Advanced", open=False):
                max_new_tokens = gr.Number(label="Max new tokens (VLMs)", value=None, precision=0,
                                           elem_id="compare-max-tokens")
            with gr.Row():
                run = gr.Button("Compare", variant="primary", elem_id="compare-button")
                stop_button = gr.Button("Stop", variant="stop", elem_id="compare-stop", interactive=False)
    summary = gr.Dataframe(headers=list(Comparison.SUMMARY_HEADERS), interactive=False, label="Summary",
                           elem_id="compare-summary")
    groups, headers, images, rendered, stats = [], [], [], [], []
    with gr.Row(equal_height=False):
        for index in range(MAX_RUNS):
            with gr.Column(visible=False, min_width=240, elem_id=f"compare-column-{index + 1}",
                           elem_classes=["compare-column"]) as group:
                headers.append(gr.Markdown())
                images.append(gr.Image(type="filepath", show_label=False, buttons=["download", "fullscreen"]))
                stats.append(gr.Markdown(elem_classes=["compare-stats"]))
                rendered.append(gr.Markdown(latex_delimiters=LATEX, sanitize_html=True, max_height=600))
            groups.append(group)
    with gr.Row():
        diff_a = gr.Dropdown([], label="Diff: from", scale=1)
        diff_b = gr.Dropdown([], label="to", scale=1)
    diff = gr.HTML(elem_id="compare-diff")
    exports = gr.File(label="Export (comparison JSON, Markdown table)", file_count="multiple")
    comparison = gr.State(None)

    private = {"api_visibility": "private"}
    event = run_with_stop(stop_button, run.click, model_event(compare_ui), [compare_file, page_number, runs, max_new_tokens, *server],
                      [summary, *groups, *headers, *images, *rendered, *stats, diff_a, diff_b, diff, exports,
                       comparison], **MODEL_EVENTS, **private)
    stop_cancels(stop_button, [event])
    for choice in (diff_a, diff_b):
        choice.change(compare_diff, [comparison, diff_a, diff_b], diff, **private)
    return compare_file
