"""ChatVLMLLM: a Gradio playground for reading documents, with a REST API in the same process.

Tabs: Parse (layout, Markdown, JSON), Chat (about a page), Compare (one page through 2-4 runs),
Region (text of a marked rectangle), Models. This module only wires the UI to the public API of
`pipelines`.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import gradio as gr
from gradio.data_classes import FileData

from pipelines import (
    MODES, DocumentResult, Element, Limits, ParseOptions, PipelineError, get_spec, list_models, load_document,
    load_pipeline,
)
from pipelines.api import create_rest_app
from pipelines.catalogue import DEFAULT_MODEL
from pipelines.chat import CHAT_PRESETS, answer_markdown, page_text_of
from pipelines.compare import MAX_RUNS, Comparison, compare_page, parse_runs, run_choices
from pipelines.model_manager import MANAGER
from pipelines.region import display_image, editor_region, format_box, parse_box, read_region
from pipelines.render.draw import draw_elements, legend_html
from pipelines.render.export import export_zip
from pipelines.render.markdown import data_url_picture_ref, page_markdown
from pipelines.render.report import timings_markdown

log = logging.getLogger("chatvlmllm")
ASSETS = Path(__file__).parent / "assets"
WORK_ROOT = Path(tempfile.gettempdir()) / "chatvlmllm"
WORK_MAX_AGE_S = 3600
LATEX = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "\\[", "right": "\\]", "display": True},
    {"left": "\\(", "right": "\\)", "display": False},
]  # no single-$ delimiters: prices like $5 must stay text
MODEL_DIRS_ENV = "CHATVLMLLM_MODEL_DIRS"
PAGE_TIME_LIMIT_S = float(os.environ.get("CHATVLMLLM_PAGE_TIME_LIMIT_S", "600"))
STREAM_INTERVAL_S = float(os.environ.get("CHATVLMLLM_STREAM_INTERVAL_S", "0.25"))  # push rate
UPLOAD_TYPES = [".pdf", ".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"]
CSS = """
.text-diff { white-space: pre-wrap; line-height: 1.6; }
.text-diff del { background: #fde2e1; color: #9f1c1c; }
.text-diff .diff-insert { background: #dcf5dd; color: #14622a; }
"""


def _new_work_dir() -> Path:
    """A fresh folder for one parse's images and zip; folders older than an hour are removed."""
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    for old in WORK_ROOT.iterdir():
        if time.time() - old.stat().st_mtime > WORK_MAX_AGE_S:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=WORK_ROOT))


def mode_choices(model: str) -> list[tuple[str, str]]:
    return [(MODES[m], m) for m in get_spec(model).modes]


def on_model_change(model: str):
    spec = get_spec(model)
    return gr.update(choices=mode_choices(model), value=spec.default_mode), spec.description


def parse_region(text: str | None) -> tuple[float, float, float, float] | None:
    """'x1, y1, x2, y2' in page pixels -> a box; empty -> None."""
    try:
        return parse_box(text)
    except PipelineError as error:
        raise gr.Error(error.message) from None


def user_error(error: BaseException, action: str) -> gr.Error:
    """What the user sees for a failure: our messages as they are; anything else is logged."""
    if isinstance(error, PipelineError):
        return gr.Error(error.message)
    if isinstance(error, MemoryError):
        return gr.Error("Out of memory on this document: select fewer pages or lower the DPI.")
    log.error("%s failed", action, exc_info=error)
    return gr.Error(f"{action} failed unexpectedly ({type(error).__name__}); the error is logged.")


def file_digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def load_page(file_path: str | None, page_number, dpi: float = 200):
    """One page (1-based) of an upload; a gr.Error that says what is wrong otherwise."""
    if not file_path:
        raise gr.Error("Upload an image or a PDF first (here or in the Parse tab).")
    try:
        return load_document(file_path, dpi=dpi, pages=str(max(1, int(page_number or 1))),
                             name=Path(file_path).name).pages[0]
    except PipelineError as error:
        raise gr.Error(error.message) from None


def save_image(image, name: str) -> str:
    path = _new_work_dir() / name
    image.save(path)
    return str(path)


def share_upload(file_path: str | None):
    """The Parse tab's upload becomes the document of the other tabs too."""
    return (file_path,) * 3 if file_path else (gr.skip(),) * 3


def show_mode_inputs(mode: str):
    """The prompt box for free prompts, the region box for region text."""
    return gr.update(visible=mode == "free_prompt"), gr.update(visible=mode == "region_text")


def parse(file_path, model, mode, dpi, pages, min_pixels, max_pixels, max_new_tokens,
          drop_headers_footers, prompt="", region="", progress=gr.Progress()):
    """Parse the upload, streaming generated text into the raw view; ends with every view filled."""
    if not file_path:
        raise gr.Error("Upload an image or a PDF first.")
    try:
        pipeline = load_pipeline(model)
        mode = pipeline.spec.check_mode(mode)
        progress(0, desc="Reading the document")
        document = load_document(file_path, dpi=float(dpi), pages=pages or None, name=Path(file_path).name)
    except PipelineError as error:
        raise gr.Error(error.message) from None
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    options = ParseOptions(
        min_pixels=int(min_pixels) if min_pixels else None,
        max_pixels=int(max_pixels) if max_pixels else None,
        max_new_tokens=int(max_new_tokens) if max_new_tokens else None,
        time_limit_s=PAGE_TIME_LIMIT_S,
        prompt=prompt or None,
        region=parse_region(region),
        on_text=lambda text: events.put(("text", text)),
        stop=stop,
    )
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["result"] = pipeline.parse_pages(
                document, mode, options, on_page=lambda done, total: events.put(("page", done, total)))
        except BaseException as error:  # reported to the user below, never lost in the thread
            outcome["error"] = error
        finally:
            events.put(("done",))

    threading.Thread(target=work, name="parse", daemon=True).start()
    streamed, last_yield = "", 0.0
    try:
        while (event := events.get())[0] != "done":
            if event[0] == "page":
                progress(event[1] / event[2], desc=f"Parsed page {event[1]} of {event[2]}")
                streamed += f"\n\n--- page {event[1] + 1} ---\n\n" if event[1] < event[2] else ""
            else:
                streamed += event[1]
            if time.monotonic() - last_yield > STREAM_INTERVAL_S:
                last_yield = time.monotonic()
                yield (gr.skip(), gr.skip(), streamed, *[gr.skip()] * 5)
    finally:
        stop.set()  # the user pressed Stop or left: end generation instead of running on
    if "error" in outcome:  # the app keeps serving; unexpected details go to the server log
        raise user_error(outcome["error"], "Parsing")
    yield _finished_views(document, outcome["result"], drop_headers_footers, file_digest(file_path))


def _finished_views(document, result: DocumentResult, drop_headers_footers: bool, digest: str):
    work = _new_work_dir()
    originals, annotated = [], []
    for page, page_result in zip(document.pages, result.pages):
        original = work / f"page_{page.number + 1:03d}_original.png"
        page.image.save(original)
        marked = work / f"page_{page.number + 1:03d}.png"
        draw_elements(page.image, page_result.elements).save(marked)
        originals.append(str(original))
        annotated.append(str(marked))
    zip_path = export_zip(result, [p.image for p in document.pages], work / "result.zip", drop_headers_footers)
    state = {"result": result.to_dict(), "originals": originals, "annotated": annotated, "digest": digest}
    views = show_page(state, 1, drop_headers_footers)
    slider = gr.update(maximum=max(2, len(result.pages)), value=1, visible=len(result.pages) > 1)
    return (*views, slider, timings_markdown(result), str(zip_path), state)


def show_page(state: dict | None, page_number, drop_headers_footers: bool):
    """Annotated image, rendered Markdown, raw Markdown and JSON of one page of the session's result."""
    if not state:
        return None, "", "", None
    result = DocumentResult.from_dict(state["result"])
    index = min(max(int(page_number or 1), 1), len(result.pages)) - 1
    page = result.pages[index]
    from PIL import Image

    with Image.open(state["originals"][index]) as original:
        rendered = page_markdown(page, data_url_picture_ref(original.convert("RGB")), drop_headers_footers)
    raw = page_markdown(page, drop_headers_footers=drop_headers_footers)
    return state["annotated"][index], rendered, raw, page.to_dict()


def loaded_models_rows() -> list[list]:
    return [[m.key, round(m.memory_bytes / 2**20, 1), round(m.idle_s)] for m in MANAGER.loaded()]


def refresh_loaded():
    return loaded_models_rows(), gr.update(choices=[m.key for m in MANAGER.loaded()], value=None)


def unload_model(name: str | None):
    if not name:
        message = "Pick a loaded model to unload."
    else:
        message = f"Unloaded **{name}**." if MANAGER.unload(name) else f"**{name}** was not loaded."
    return message, *refresh_loaded()


# -- Chat ------------------------------------------------------------------------------------------

CHAT_MODELS = [(spec.label, spec.key) for spec in list_models() if spec.can_chat]


def chat_display(turns: list[dict]) -> list[dict]:
    """The Chatbot's messages for the conversation's turns (answers rendered for display)."""
    messages = []
    for turn in turns:
        if turn.get("file"):
            messages.append({"role": "user", "content": f"📎 {turn['file']}"})
        messages.append({"role": "user", "content": turn["user"]})
        if turn.get("error"):
            messages.append({"role": "assistant", "content": f"⚠️ {turn['error']}"})
        elif turn.get("assistant") is not None:
            messages.append({"role": "assistant", "content": answer_markdown(turn["assistant"])})
    return messages


def chat_messages(turns: list[dict]) -> list[dict]:
    """What the model hears: every answered turn, then the open question (failed turns left out)."""
    messages = []
    for turn in turns:
        if turn.get("error"):
            continue
        messages.append({"role": "user", "content": turn["user"]})
        if turn.get("assistant"):
            messages.append({"role": "assistant", "content": turn["assistant"]})
    return messages


def chat_add(message: dict | None, turns: list[dict], file_path: str | None):
    """A submitted message becomes an open turn; an attached file becomes the chat's document."""
    text = ((message or {}).get("text") or "").strip()
    files = (message or {}).get("files") or []
    attached = files[-1] if files else None
    if isinstance(attached, dict):
        attached = attached.get("path")
    if not text and not attached:
        raise gr.Error("Type a question about the page.")
    turns = list(turns or [])
    if text:
        turns.append({"user": text, "assistant": None, "file": Path(attached).name if attached else None})
    return gr.update(value=None), turns, chat_display(turns), attached or gr.skip()


def chat_page_text(state: dict | None, file_path: str, page_number) -> str | bool:
    """The Parse tab's Markdown for this page of this file, or True: parse the page now."""
    if state and state.get("digest") == file_digest(file_path):
        text = page_text_of(DocumentResult.from_dict(state["result"]), int(page_number or 1) - 1)
        if text is not None:
            return text
    return True


def chat_respond(turns: list[dict], file_path, model, page_number, with_page_text, parse_state, max_new_tokens):
    """Stream the answer to the open turn into the Chatbot; at the end, draw its boxes on the page."""
    if not turns or turns[-1].get("assistant") is not None or turns[-1].get("error"):
        yield gr.skip(), gr.skip(), gr.skip(), gr.skip()  # no open question (a file was only attached)
        return
    turns = [dict(t) for t in turns]
    turn = turns[-1]
    if not file_path:
        turn["error"] = "Attach a page (the clip in the message box) or upload one in this tab or the Parse tab."
        yield chat_display(turns), turns, gr.skip(), turn["error"]
        return
    stream = None
    try:
        page_text = chat_page_text(parse_state, file_path, page_number) if with_page_text else None
        stream = load_pipeline(model).chat(
            file_path, chat_messages(turns), stream=True, page=int(page_number or 1), page_text=page_text,
            max_new_tokens=int(max_new_tokens) if max_new_tokens else None)
        notes = "\n\n".join(stream.notes)
        turn["assistant"], last_yield = "", 0.0
        yield chat_display(turns), turns, gr.skip(), notes
        for chunk in stream:
            turn["assistant"] += chunk
            if time.monotonic() - last_yield > STREAM_INTERVAL_S:
                last_yield = time.monotonic()
                yield chat_display(turns), turns, gr.skip(), notes
    except Exception as error:  # noqa: BLE001 - shown in the conversation, the app keeps serving
        message = user_error(error, "Chat").message
        turn.update(assistant=None, error=message)
        yield chat_display(turns), turns, gr.skip(), message
        return
    finally:
        if stream is not None:
            stream.close()  # Stop pressed or the user left: end generation
    reply = stream.reply
    turn["assistant"] = reply.text
    page = load_page(file_path, page_number)
    marked = save_image(draw_elements(page.image, reply.elements), "chat_page.png")
    found = f"{len(reply.elements)} box(es) from the answer drawn on the page." if reply.elements else ""
    yield chat_display(turns), turns, marked, "\n\n".join([*reply.notes, found]).strip()


def chat_regenerate(turns: list[dict]):
    """The last question opened again, for a new answer."""
    if not turns:
        raise gr.Error("Nothing to regenerate yet.")
    turns = [dict(t) for t in turns]
    turns[-1].update(assistant=None, error=None)
    return turns, chat_display(turns)


def chat_undo(turns: list[dict]):
    """The last turn removed; its question goes back into the message box."""
    if not turns:
        return [], [], gr.skip()
    turns = list(turns)
    last = turns.pop()
    return turns, chat_display(turns), {"text": last["user"], "files": []}


def chat_preview(file_path, page_number):
    if not file_path:
        return None
    try:
        return save_image(load_page(file_path, page_number).image, "chat_page.png")
    except gr.Error:
        return None


def chat_api(file: FileData, messages: list[dict], model: str, page: int = 1, page_text: bool = False,
             max_new_tokens: int = 0) -> Iterator[dict]:
    """Chat about one page (1-based) of an image or PDF: messages are [{"role", "content"}], the last
    one the user's question. Streams {"answer": text so far, "done": false}; the last update is the
    whole reply (answer, boxes it names in page pixels, notes) with "done": true."""
    stream = None
    try:
        stream = load_pipeline(model).chat(file["path"], messages, stream=True, page=page,
                                           page_text=page_text or None, max_new_tokens=max_new_tokens or None)
        answer = ""
        for chunk in stream:
            answer += chunk
            yield {"answer": answer, "done": False}
    except Exception as error:  # noqa: BLE001
        raise user_error(error, "Chat") from None
    finally:
        if stream is not None:
            stream.close()
    yield {**stream.reply.to_dict(), "done": True}


# -- Compare ---------------------------------------------------------------------------------------


def compare_views(page, column, index: int):
    """Header, annotated page, rendered Markdown and stats of one column."""
    header = f"### {column.run.label}"
    if column.result is None:
        return header, None, "", column.summary_markdown()
    marked = save_image(draw_elements(page.image, column.result.elements), f"compare_{index + 1}.png")
    rendered = page_markdown(column.result, data_url_picture_ref(page.image))
    return header, marked, rendered, column.summary_markdown()


def compare_ui(file_path, page_number, runs, max_new_tokens):
    """Run the page through every chosen run; each column fills in as its run finishes.

    Outputs: summary, then per column (MAX_RUNS of each) group, header, image, Markdown, stats,
    then diff choice A, diff choice B, diff, export files, comparison state."""
    try:
        chosen = parse_runs(runs or [])
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
            outcome["comparison"] = compare_page(page, chosen, source=Path(file_path).name, options=options,
                                                 on_column=lambda index, column: finished.put((index, column)))
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
    work_dir = _new_work_dir()
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
        document = load_document(file["path"], pages=str(page), name=Path(file["path"]).name)
        options = ParseOptions(max_new_tokens=max_new_tokens or None, time_limit_s=PAGE_TIME_LIMIT_S)
        return compare_page(document.pages[0], chosen, source=document.name, options=options).to_dict()
    except Exception as error:  # noqa: BLE001
        raise user_error(error, "Comparing") from None


# -- Region ----------------------------------------------------------------------------------------

REGION_MODELS = [
    (f"{spec.label} ({'region prompt' if 'region_text' in spec.modes else 'reads the crop'})", spec.key)
    for spec in list_models()
]


def region_load(file_path, page_number):
    """The page on the marking canvas (scaled down to DISPLAY_MAX_SIDE), and where its original is."""
    if not file_path:
        return None, None, "", ""
    page = load_page(file_path, page_number)
    original = save_image(page.image, "region_page.png")
    editor = {"background": display_image(page.image), "layers": [], "composite": None}
    width, height = page.size
    ready = (f"Page {page.number + 1} of {Path(file_path).name}: {width} x {height} px. Paint over the region "
             "to read, or type its box.")
    return editor, {"original": original, "size": [width, height]}, "", ready


def region_from_editor(value, page_state):
    """What the user painted -> the region box in page pixels (the numeric box shows it)."""
    if not page_state:
        return gr.skip()
    try:
        box = editor_region(value, tuple(page_state["size"]))
    except PipelineError as error:
        raise gr.Error(error.message) from None
    return format_box(box) if box else gr.skip()


def region_read(page_state, model, box_text, max_new_tokens):
    """The text in the region: the page with the box drawn where it was marked, and the text."""
    if not page_state:
        raise gr.Error("Upload an image or a PDF first (here or in the Parse tab).")
    region = parse_region(box_text)
    if region is None:
        raise gr.Error("Mark a region on the page (paint over it) or type x1, y1, x2, y2 in page pixels.")
    page = load_page(page_state["original"], 1)
    try:
        result = read_region(load_pipeline(model), page, region, ParseOptions(
            max_new_tokens=int(max_new_tokens) if max_new_tokens else None, time_limit_s=PAGE_TIME_LIMIT_S))
    except Exception as error:  # noqa: BLE001
        raise user_error(error, "Reading the region") from None
    marks = [Element(result.box, "Text", result.text)]
    marks += [e for e in result.elements if e.bbox != result.box]
    marked = save_image(draw_elements(page.image, marks), "region_marked.png")
    how = (f"Asked **{result.model}** for the region: `{result.prompt}`" if result.method == "region"
           else f"**{result.model}** has no region mode: it read the cropped region ({result.mode}).")
    info = "\n\n".join([f"Region {format_box(result.box)} (page pixels). {how}", *[f"- {w}" for w in result.warnings]])
    return marked, result.text, info, result.to_dict()


def region_text_api(file: FileData, model: str, box: list[float], page: int = 1, max_new_tokens: int = 0) -> dict:
    """The text inside box [x1, y1, x2, y2] (page pixels) on one page (1-based): the model's region
    mode where it has one (the box written in its convention), else the cropped region."""
    try:
        document = load_document(file["path"], pages=str(page))
        options = ParseOptions(max_new_tokens=max_new_tokens or None, time_limit_s=PAGE_TIME_LIMIT_S)
        return read_region(load_pipeline(model), document.pages[0], tuple(box), options).to_dict()
    except Exception as error:  # noqa: BLE001
        raise user_error(error, "Reading the region") from None


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="ChatVLMLLM") as demo:
        gr.Markdown("# ChatVLMLLM\nRead scanned pages, photos and PDFs: layout boxes, Markdown and JSON; chat "
                    "about a page, compare models, read a marked region.")
        state = gr.State(None)
        with gr.Tab("Parse"):
            upload = build_parse_tab(state)
        with gr.Tab("Chat"):
            chat_file = build_chat_tab(state)
        with gr.Tab("Compare"):
            compare_file = build_compare_tab()
        with gr.Tab("Region"):
            region_file = build_region_tab()
        with gr.Tab("Models"):
            build_models_tab(demo)
        upload.change(share_upload, upload, [chat_file, compare_file, region_file], api_visibility="private")
        # Endpoints for gradio_client (the UI's own events above are private).
        gr.api(chat_api, api_name="chat", concurrency_limit=2, concurrency_id="models")
        gr.api(compare_api, api_name="compare", concurrency_limit=2, concurrency_id="models")
        gr.api(region_text_api, api_name="region_text", concurrency_limit=2, concurrency_id="models")
    return demo


def build_parse_tab(state: gr.State) -> gr.File:
    models = [(spec.label, spec.key) for spec in list_models()]
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="Image or PDF", file_types=UPLOAD_TYPES, type="filepath", elem_id="parse-upload")
            model = gr.Dropdown(models, value=DEFAULT_MODEL, label="Model")
            model_info = gr.Markdown(get_spec(DEFAULT_MODEL).description)
            mode = gr.Radio(mode_choices(DEFAULT_MODEL), value=get_spec(DEFAULT_MODEL).default_mode,
                            label="Prompt mode")
            prompt = gr.Textbox(label="Prompt", placeholder="Ask about the page, e.g. List every date.",
                                visible=False, lines=2)
            region = gr.Textbox(label="Region: x1, y1, x2, y2 in page pixels", visible=False,
                                placeholder="120, 160, 900, 400")
            with gr.Accordion("Advanced", open=False):
                dpi = gr.Slider(72, 400, value=200, step=1, label="PDF render DPI")
                pages = gr.Textbox(label="Pages", placeholder="all, or e.g. 1-3,7")
                min_pixels = gr.Number(label="Min pixels (VLM input)", value=None, precision=0)
                max_pixels = gr.Number(label="Max pixels (VLM input)", value=None, precision=0)
                max_new_tokens = gr.Number(label="Max new tokens (VLMs)", value=None, precision=0)
            drop_hf = gr.Checkbox(label="Drop page headers and footers from Markdown", value=False)
            with gr.Row():
                run = gr.Button("Parse", variant="primary", elem_id="parse-button")
                stop_button = gr.Button("Stop", variant="stop", elem_id="stop-button")
            examples = sorted(str(p) for p in ASSETS.glob("*") if p.suffix.lower() in UPLOAD_TYPES)
            if examples:
                gr.Examples(examples=[[e] for e in examples], inputs=[upload], label="Examples")
        with gr.Column(scale=2):
            page_slider = gr.Slider(1, 2, value=1, step=1, label="Page", visible=False)
            with gr.Tabs():
                with gr.Tab("Layout"):
                    annotated = gr.Image(label="Annotated page", type="filepath",
                                         elem_id="annotated-page", buttons=["download", "fullscreen"])
                    gr.HTML(legend_html())
                with gr.Tab("Markdown"):
                    rendered = gr.Markdown(latex_delimiters=LATEX, sanitize_html=True, elem_id="rendered-markdown")
                with gr.Tab("Raw Markdown"):
                    raw = gr.Code(language="markdown", label="Markdown")
                with gr.Tab("JSON"):
                    page_json = gr.JSON(label="Page JSON", elem_id="page-json")
                with gr.Tab("Timings"):
                    timings = gr.Markdown(elem_id="timings")
            download = gr.File(label="Download (zip: annotated PNG, JSON, Markdown per page)")

    model.change(on_model_change, model, [mode, model_info], api_visibility="private")
    mode.change(show_mode_inputs, mode, [prompt, region], api_visibility="private")
    parse_event = run.click(
        parse,
        [upload, model, mode, dpi, pages, min_pixels, max_pixels, max_new_tokens, drop_hf, prompt, region],
        [annotated, rendered, raw, page_json, page_slider, timings, download, state],
        api_name="parse",
        concurrency_limit=2,
        concurrency_id="models",
    )
    stop_button.click(None, None, None, cancels=[parse_event], api_visibility="private")
    page_slider.release(show_page, [state, page_slider, drop_hf], [annotated, rendered, raw, page_json],
                        api_visibility="private")
    drop_hf.change(show_page, [state, page_slider, drop_hf], [annotated, rendered, raw, page_json],
                   api_visibility="private")
    return upload


def build_chat_tab(state: gr.State) -> gr.File:
    turns = gr.State([])
    with gr.Row():
        with gr.Column(scale=1):
            chat_file = gr.File(label="Document (image or PDF)", file_types=UPLOAD_TYPES, type="filepath",
                                elem_id="chat-file")
            model = gr.Dropdown(CHAT_MODELS, value=CHAT_MODELS[0][1] if CHAT_MODELS else None,
                                label="Model (chat-capable)", elem_id="chat-model")
            page_number = gr.Number(1, label="Page", precision=0, minimum=1, elem_id="chat-page-number")
            with_page_text = gr.Checkbox(
                label="Add the page's parsed Markdown as context (the Parse tab's result for this page, "
                      "else a fresh classic OCR parse)", value=False)
            with gr.Accordion("Advanced", open=False):
                max_new_tokens = gr.Number(label="Max new tokens", value=None, precision=0,
                                           elem_id="chat-max-tokens")
            page_view = gr.Image(label="Page (boxes the last answer names)", type="filepath",
                                 elem_id="chat-page", buttons=["download", "fullscreen"])
        with gr.Column(scale=2):
            chatbot = gr.Chatbot(label="Chat", elem_id="chatbot", latex_delimiters=LATEX, sanitize_html=True,
                                 height=520, buttons=["copy"],
                                 placeholder="Ask about the page: attach it with the clip, or use the "
                                             "document on the left.")
            with gr.Row():
                presets = [gr.Button(label, size="sm") for label in CHAT_PRESETS]
            message = gr.MultimodalTextbox(file_types=UPLOAD_TYPES, file_count="single", show_label=False,
                                           placeholder="Ask about the page…", elem_id="chat-input")
            with gr.Row():
                stop_button = gr.Button("Stop", variant="stop", size="sm", elem_id="chat-stop")
                regenerate = gr.Button("Regenerate", size="sm", elem_id="chat-regenerate")
                undo = gr.Button("Undo", size="sm", elem_id="chat-undo")
                clear = gr.Button("Clear", size="sm", elem_id="chat-clear")
            notes = gr.Markdown(elem_id="chat-notes")

    respond_inputs = [turns, chat_file, model, page_number, with_page_text, state, max_new_tokens]
    respond_outputs = [chatbot, turns, page_view, notes]
    private = {"api_visibility": "private"}
    answering = message.submit(chat_add, [message, turns, chat_file], [message, turns, chatbot, chat_file],
                               **private).success(chat_respond, respond_inputs, respond_outputs,
                                                  concurrency_limit=2, concurrency_id="models", **private)
    again = regenerate.click(chat_regenerate, turns, [turns, chatbot], **private).success(
        chat_respond, respond_inputs, respond_outputs, concurrency_limit=2, concurrency_id="models", **private)
    stop_button.click(None, None, None, cancels=[answering, again], **private)
    undo.click(chat_undo, turns, [turns, chatbot, message], **private)
    clear.click(lambda: ([], [], None, ""), None, [turns, chatbot, page_view, notes], **private)
    chatbot.clear(lambda: ([], None, ""), None, [turns, page_view, notes], **private)  # its own bin icon
    for button, text in zip(presets, CHAT_PRESETS.values()):
        button.click(lambda text=text: {"text": text, "files": []}, None, message, **private)
    chat_file.change(chat_preview, [chat_file, page_number], page_view, **private)
    page_number.change(chat_preview, [chat_file, page_number], page_view, **private)
    return chat_file


def build_compare_tab() -> gr.File:
    with gr.Row():
        with gr.Column(scale=1):
            compare_file = gr.File(label="Image or PDF", file_types=UPLOAD_TYPES, type="filepath",
                                   elem_id="compare-file")
            page_number = gr.Number(1, label="Page", precision=0, minimum=1)
        with gr.Column(scale=2):
            runs = gr.Dropdown(run_choices(), value=["classic:layout_all"], multiselect=True, max_choices=MAX_RUNS,
                               label=f"Runs: 2 to {MAX_RUNS} models or modes", elem_id="compare-runs")
            with gr.Accordion("Advanced", open=False):
                max_new_tokens = gr.Number(label="Max new tokens (VLMs)", value=None, precision=0,
                                           elem_id="compare-max-tokens")
            with gr.Row():
                run = gr.Button("Compare", variant="primary", elem_id="compare-button")
                stop_button = gr.Button("Stop", variant="stop", elem_id="compare-stop")
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
    event = run.click(compare_ui, [compare_file, page_number, runs, max_new_tokens],
                      [summary, *groups, *headers, *images, *rendered, *stats, diff_a, diff_b, diff, exports,
                       comparison], concurrency_limit=2, concurrency_id="models", **private)
    stop_button.click(None, None, None, cancels=[event], **private)
    for choice in (diff_a, diff_b):
        choice.change(compare_diff, [comparison, diff_a, diff_b], diff, **private)
    return compare_file


def build_region_tab() -> gr.File:
    page_state = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            region_file = gr.File(label="Image or PDF", file_types=UPLOAD_TYPES, type="filepath",
                                  elem_id="region-file")
            page_number = gr.Number(1, label="Page", precision=0, minimum=1)
            model = gr.Dropdown(REGION_MODELS, value=DEFAULT_MODEL, label="Model", elem_id="region-model")
            box = gr.Textbox(label="Region: x1, y1, x2, y2 in page pixels (filled in when you paint)",
                             placeholder="120, 160, 900, 400", elem_id="region-box")
            with gr.Accordion("Advanced", open=False):
                max_new_tokens = gr.Number(label="Max new tokens (VLMs)", value=None, precision=0,
                                           elem_id="region-max-tokens")
            read = gr.Button("Read region", variant="primary", elem_id="region-button")
            info = gr.Markdown(elem_id="region-info")
        with gr.Column(scale=2):
            editor = gr.ImageEditor(
                label="Paint over the region to read (the box is the rectangle around your strokes)",
                type="numpy", image_mode="RGBA", sources=(), transforms=(), layers=False,
                brush=gr.Brush(default_size=6, colors=["rgba(230, 40, 40, 0.55)"], color_mode="fixed"),
                height=720, elem_id="region-editor")
    with gr.Row():
        marked = gr.Image(label="The region on the page", type="filepath", elem_id="region-marked",
                          buttons=["download", "fullscreen"])
        with gr.Column():
            text = gr.Markdown(latex_delimiters=LATEX, sanitize_html=True, elem_id="region-text")
            result_json = gr.JSON(label="Result JSON", open=False)

    private = {"api_visibility": "private"}
    for trigger in (region_file.change, page_number.change):
        trigger(region_load, [region_file, page_number], [editor, page_state, box, info], **private)
    editor.change(region_from_editor, [editor, page_state], box, **private)
    read.click(region_read, [page_state, model, box, max_new_tokens], [marked, text, info, result_json],
               concurrency_limit=2, concurrency_id="models", **private)
    return region_file


def build_models_tab(demo: gr.Blocks) -> None:
    gr.Markdown("Models load on first use and stay loaded within the memory budget; the least "
                "recently used one is unloaded first.")
    loaded_table = gr.Dataframe(headers=["model", "memory (MB)", "idle (s)"],
                                interactive=False, label="Loaded models", elem_id="loaded-models")
    with gr.Row():
        unload_choice = gr.Dropdown([], label="Loaded model to unload", allow_custom_value=True)
        unload_button = gr.Button("Unload")
        refresh_button = gr.Button("Refresh")
    unload_status = gr.Markdown()
    refresh_button.click(refresh_loaded, None, [loaded_table, unload_choice], api_visibility="private")
    demo.load(refresh_loaded, None, [loaded_table, unload_choice], api_visibility="private")
    unload_button.click(unload_model, unload_choice, [unload_status, loaded_table, unload_choice],
                        api_name="unload_model")


def create_app():
    """The FastAPI app: REST routes plus the Gradio UI mounted at /."""
    demo = build_demo().queue(max_size=32, default_concurrency_limit=2)
    limits = Limits()
    return gr.mount_gradio_app(create_rest_app(limits), demo, path="/", max_file_size=limits.max_bytes, css=CSS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="interface to listen on (default 127.0.0.1; 0.0.0.0 exposes it to your network)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--model-dir", action="append", default=[], metavar="KEY=DIR",
                        help="load a catalogue model from a local folder instead of the hub "
                             "(repeatable; same as CHATVLMLLM_MODEL_DIRS='key=dir,key2=dir2')")
    args = parser.parse_args()
    if args.model_dir:
        known = [d for d in os.environ.get(MODEL_DIRS_ENV, "").split(",") if d]
        os.environ[MODEL_DIRS_ENV] = ",".join(known + args.model_dir)
    logging.basicConfig(level=logging.INFO)
    import uvicorn

    print(f"ChatVLMLLM on http://{args.host}:{args.port}  "
          "(REST: /analyze_layout, /chat, /compare, /region_text, /models, /health)")
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
