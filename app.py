"""ChatVLMLLM: a Gradio playground for reading documents, with a REST API in the same process.

This module only wires the UI to the public API of `pipelines`.
"""
from __future__ import annotations

import argparse
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr

from pipelines import (
    MODES, DocumentResult, Limits, ParseOptions, PipelineError, get_spec, list_models, load_document,
    load_pipeline,
)
from pipelines.api import create_rest_app
from pipelines.catalogue import DEFAULT_MODEL
from pipelines.model_manager import MANAGER
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
    if not text or not text.strip():
        return None
    try:
        x1, y1, x2, y2 = (float(v) for v in text.replace("(", " ").replace(")", " ").replace(",", " ").split())
    except ValueError:
        raise gr.Error("Region must be four numbers: x1, y1, x2, y2 in page pixels.") from None
    if x2 <= x1 or y2 <= y1:
        raise gr.Error("Region needs x1 < x2 and y1 < y2.")
    return (x1, y1, x2, y2)


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
    error = outcome.get("error")
    if isinstance(error, PipelineError):
        raise gr.Error(error.message)
    if isinstance(error, MemoryError):
        raise gr.Error("Out of memory on this document: select fewer pages or lower the DPI.")
    if error is not None:  # the app keeps serving; the details go to the server log
        log.error("parse failed", exc_info=error)
        raise gr.Error(f"Parsing failed unexpectedly ({type(error).__name__}); the error is logged.")
    yield _finished_views(document, outcome["result"], drop_headers_footers)


def _finished_views(document, result: DocumentResult, drop_headers_footers: bool):
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
    state = {"result": result.to_dict(), "originals": originals, "annotated": annotated}
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


def build_demo() -> gr.Blocks:
    models = [(spec.label, spec.key) for spec in list_models()]
    with gr.Blocks(title="ChatVLMLLM") as demo:
        gr.Markdown("# ChatVLMLLM\nRead scanned pages, photos and PDFs: layout boxes, Markdown and JSON.")
        state = gr.State(None)
        with gr.Tab("Parse"):
            with gr.Row():
                with gr.Column(scale=1):
                    upload = gr.File(label="Image or PDF", file_types=UPLOAD_TYPES, type="filepath")
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
                            rendered = gr.Markdown(latex_delimiters=LATEX, sanitize_html=True,
                                                   elem_id="rendered-markdown")
                        with gr.Tab("Raw Markdown"):
                            raw = gr.Code(language="markdown", label="Markdown")
                        with gr.Tab("JSON"):
                            page_json = gr.JSON(label="Page JSON", elem_id="page-json")
                        with gr.Tab("Timings"):
                            timings = gr.Markdown(elem_id="timings")
                    download = gr.File(label="Download (zip: annotated PNG, JSON, Markdown per page)")

        with gr.Tab("Models"):
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
        model.change(on_model_change, model, [mode, model_info], api_visibility="private")
        mode.change(show_mode_inputs, mode, [prompt, region], api_visibility="private")
        parse_event = run.click(
            parse,
            [upload, model, mode, dpi, pages, min_pixels, max_pixels, max_new_tokens, drop_hf, prompt, region],
            [annotated, rendered, raw, page_json, page_slider, timings, download, state],
            api_name="parse",
            concurrency_limit=2,
        )
        stop_button.click(None, None, None, cancels=[parse_event], api_visibility="private")
        page_slider.release(show_page, [state, page_slider, drop_hf], [annotated, rendered, raw, page_json],
                            api_visibility="private")
        drop_hf.change(show_page, [state, page_slider, drop_hf], [annotated, rendered, raw, page_json],
                       api_visibility="private")
    return demo


def create_app():
    """The FastAPI app: REST routes plus the Gradio UI mounted at /."""
    demo = build_demo().queue(max_size=32, default_concurrency_limit=2)
    limits = Limits()
    return gr.mount_gradio_app(create_rest_app(limits), demo, path="/", max_file_size=limits.max_bytes)


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

    print(f"ChatVLMLLM on http://{args.host}:{args.port}  (REST: /analyze_layout, /models, /health)")
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
