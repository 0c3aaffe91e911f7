"""The Parse tab: layout, Markdown and JSON of a document, streamed while the model writes."""
from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import gradio as gr

from pipelines import (
    DocumentResult, PageResult, ParseOptions, get_spec, list_models, load_document,
)
from pipelines.catalogue import DEFAULT_MODEL
from pipelines.render.draw import draw_elements, legend_html
from pipelines.render.export import export_zip
from pipelines.render.markdown import data_url_picture_ref, page_markdown
from pipelines.render.report import timings_markdown
from ui.common import (
    model_choice, model_event, ModelLists, run_with_stop, stop_cancels,
    ASSETS, EXAMPLES, LATEX, MODEL_EVENTS, PAGE_TIME_LIMIT_S, STREAM_INTERVAL_S, UPLOAD_TYPES, new_work_dir, file_digest, mode_choices,
    parse_region, session_pipeline, user_error,
)


def on_model_change(model: str):
    spec = get_spec(model)
    return gr.update(choices=mode_choices(model), value=spec.default_mode), model_description(spec)


def model_description(spec) -> str:
    """The model's description, and what this install lacks to run it locally, if anything."""
    from pipelines.engines.hf_loading import VLM_INSTALL, missing_packages

    missing = missing_packages(spec)
    if not missing:
        return spec.description
    return (f"{spec.description}\n\nThis install cannot run it locally (missing: {', '.join(missing)}): "
            f"`{VLM_INSTALL}` adds that, or name a vLLM/SGLang server under Server.")


def language_choices() -> list[tuple[str, str]]:
    """The built-in recogniser first, then Tesseract languages (with English for mixed text),
    marked installed or with the Debian package they need."""
    from pipelines.engines.tesseract_ocr import LANGUAGE_NAMES, debian_package, installed_languages

    installed = installed_languages()
    choices = [("Built-in: English, Chinese", "")]
    for code in sorted(set(LANGUAGE_NAMES) | set(installed), key=lambda c: LANGUAGE_NAMES.get(c, c)):
        value = code if code == "eng" else f"{code}+eng"
        note = "installed" if code in installed else f"needs {debian_package(code)}"
        choices.append((f"{LANGUAGE_NAMES.get(code, code)} ({value}; {note})", value))
    return choices


def show_mode_inputs(mode: str):
    """The prompt box for free prompts, the region box for region text."""
    return gr.update(visible=mode == "free_prompt"), gr.update(visible=mode == "region_text")


def parse(file_path, model, mode, dpi, pages, min_pixels, max_pixels, max_new_tokens,
          drop_headers_footers, prompt="", region="", server_urls="", served_model="", language="",
          progress=gr.Progress()):
    """Parse the upload, streaming generated text into the raw view; ends with every view filled."""
    if not file_path:
        raise gr.Error("Upload an image or a PDF first.")
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    try:
        pipeline = session_pipeline(model, server_urls, served_model)
        mode = pipeline.spec.check_mode(mode)
        options = ParseOptions(
            min_pixels=int(min_pixels) if min_pixels else None,
            max_pixels=int(max_pixels) if max_pixels else None,
            max_new_tokens=int(max_new_tokens) if max_new_tokens else None,
            time_limit_s=PAGE_TIME_LIMIT_S,
            prompt=prompt or None,
            region=parse_region(region),
            language=language or None,
            on_text=lambda text: events.put(("text", text)),
            stop=stop,
        )
        progress(0, desc="Reading the document")
        document = load_document(file_path, dpi=float(dpi), pages=pages or None, name=Path(file_path).name)
    except gr.Error:
        raise
    except Exception as error:  # noqa: BLE001 - ours shown as they are, anything else logged
        raise user_error(error, "Reading the request") from None
    outcome: dict = {}

    finished: list[int] = []
    work_dir = new_work_dir()
    by_number = {page.number: page for page in document.pages}
    saved: dict[int, tuple[str, str]] = {}  # page number -> (original PNG, annotated PNG)

    def page_done(result: PageResult) -> None:
        # Saved now, while the page is rendered: the pipeline lets a PDF page go once it is done.
        image = by_number[result.page].image
        saved[result.page] = _save_page(work_dir, image, result)
        rendered = page_markdown(result, data_url_picture_ref(image), drop_headers_footers)
        # Pages may finish in any order (the openai backend runs several at once): name the page
        # that finished rather than counting completions; none after the last one.
        finished.append(result.page)
        events.put(("result", result, rendered))
        if len(finished) < len(document.pages):
            events.put(("text", f"\n\n--- page {result.page + 1} done ---\n\n"))

    def work() -> None:
        try:
            outcome["result"] = pipeline.parse_pages(
                document, mode, options, on_page=lambda done, total: events.put(("page", done, total)),
                on_result=page_done)
        except BaseException as error:  # reported to the user below, never lost in the thread
            outcome["error"] = error
        finally:
            events.put(("done",))

    started = time.monotonic()
    threading.Thread(target=work, name="parse", daemon=True).start()
    streamed, last_yield = "", 0.0
    try:
        while (event := events.get())[0] != "done":
            if event[0] == "page":
                progress(event[1] / event[2], desc=f"Parsed {event[1]} of {event[2]} pages · "
                                                     f"{time.monotonic() - started:.0f} s")
            elif event[0] == "result":  # a page is done: show it now, not when the last one is
                _, result, rendered = event
                last_yield = time.monotonic()
                yield (saved[result.page][1], rendered, streamed, result.to_dict(), *[gr.skip()] * 4)
                continue
            else:
                streamed += event[1]
            if time.monotonic() - last_yield > STREAM_INTERVAL_S:
                last_yield = time.monotonic()
                yield (gr.skip(), gr.skip(), streamed, *[gr.skip()] * 5)
    finally:
        stop.set()  # the user pressed Stop or left: end generation instead of running on
    if "error" in outcome:  # the app keeps serving; unexpected details go to the server log
        raise user_error(outcome["error"], "Parsing")
    yield _finished_views(work_dir, saved, outcome["result"], drop_headers_footers, file_digest(file_path))


def _save_page(work: Path, image, result: PageResult) -> tuple[str, str]:
    """The page and its boxes (drawn once, reused by the zip) as PNG files. Fast compression: the
    default level took 0.35 s a page for both, for files about 10% smaller."""
    original = work / f"page_{result.page + 1:03d}_original.png"
    image.save(original, compress_level=1)
    marked = work / f"page_{result.page + 1:03d}.png"
    draw_elements(image, result.elements).save(marked, compress_level=1)
    return str(original), str(marked)


def _finished_views(work: Path, saved: dict[int, tuple[str, str]], result: DocumentResult,
                    drop_headers_footers: bool, digest: str):
    originals = [saved[page.page][0] for page in result.pages]
    annotated = [saved[page.page][1] for page in result.pages]
    zip_path = export_zip(result, originals, work / "result.zip", drop_headers_footers, annotated_pngs=annotated)
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


def build_parse_tab(model_lists: ModelLists, state: gr.State) -> tuple[gr.File, list[gr.Textbox]]:
    """The Parse tab; returns its upload (shared with the other tabs) and its Server fields (base
    URLs, served model name), which every tab's model runs use."""
    def models() -> list[tuple[str, str]]:
        return [model_choice(spec) for spec in list_models()]

    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="Image or PDF", file_types=UPLOAD_TYPES, type="filepath", elem_id="parse-upload")
            model = gr.Dropdown(models(), value=DEFAULT_MODEL, label="Model")
            model_lists.add(model, models)
            model_info = gr.Markdown(model_description(get_spec(DEFAULT_MODEL)))
            mode = gr.Radio(mode_choices(DEFAULT_MODEL), value=get_spec(DEFAULT_MODEL).default_mode,
                            label="Prompt mode")
            prompt = gr.Textbox("", label="Prompt", placeholder="Ask about the page, e.g. List every date.",
                                visible=False, lines=2)
            region = gr.Textbox("", label="Region: x1, y1, x2, y2 in page pixels", visible=False,
                                placeholder="120, 160, 900, 400")
            language = gr.Dropdown(language_choices(), value="", allow_custom_value=True, elem_id="language",
                                   label="Language (classic: other scripts through Tesseract; VLMs read any)")
            with gr.Accordion("Advanced", open=False):
                dpi = gr.Slider(72, 400, value=200, step=1, label="PDF render DPI")
                pages = gr.Textbox("", label="Pages", placeholder="all, or e.g. 1-3,7")
                # 0 means the model's default; a value (not None) also makes each optional in the API.
                min_pixels = gr.Number(0, label="Min pixels (VLM input; 0: the model's default)", precision=0)
                max_pixels = gr.Number(0, label="Max pixels (VLM input; 0: the model's default)", precision=0)
                max_new_tokens = gr.Number(0, label="Max new tokens (VLMs; 0: the model's default)", precision=0)
            with gr.Accordion("Server (OpenAI-compatible: vLLM, SGLang), for every tab", open=False):
                server_urls = gr.Textbox("", label="Base URL(s)", placeholder="http://gpu1:8000/v1 — only URLs the "
                                         "operator allows (CHATVLMLLM_ALLOWED_SERVER_URLS)")
                served_model = gr.Textbox("", label="Served model name", placeholder="default: what /v1/models lists")
            drop_hf = gr.Checkbox(label="Drop page headers and footers from Markdown", value=False)
            with gr.Row():
                run = gr.Button("Parse", variant="primary", elem_id="parse-button")
                stop_button = gr.Button("Stop", variant="stop", elem_id="stop-button", interactive=False)
            # The thumbnail column is a hidden image input: Gradio's example table shows images as pictures.
            thumbnail = gr.Image(visible=False, type="filepath", label="Example")
            gr.Examples(examples=[[str(ASSETS / "thumbnails" / f"{Path(name).stem}.png"), str(ASSETS / name),
                                   model_key, mode_key, lang]
                                  for name, _, model_key, mode_key, lang in EXAMPLES],
                        inputs=[thumbnail, upload, model, mode, language], elem_id="parse-examples",
                        label="Examples: click one to load it with the model, mode and language that read it well")
        with gr.Column(scale=2):
            page_slider = gr.Slider(1, 2, value=1, step=1, label="Page", visible=False, elem_id="page-slider")
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
                    page_json = gr.JSON(label='Page JSON ("page" counts from 0: page 1 is "page": 0)',
                                        elem_id="page-json")
                with gr.Tab("Timings"):
                    timings = gr.Markdown(elem_id="timings")
            download = gr.File(label="Download (zip: annotated PNG, JSON, Markdown per page)")

    model.change(on_model_change, model, [mode, model_info], api_visibility="private")
    mode.change(show_mode_inputs, mode, [prompt, region], api_visibility="private")
    parse_event = run_with_stop(
        stop_button, run.click, model_event(parse),
        [upload, model, mode, dpi, pages, min_pixels, max_pixels, max_new_tokens, drop_hf, prompt, region,
         server_urls, served_model, language],
        [annotated, rendered, raw, page_json, page_slider, timings, download, state],
        api_name="parse",
        **MODEL_EVENTS,
    )
    stop_cancels(stop_button, [parse_event])
    # .input: dragging, and typing a number then Enter, both turn the page.
    page_slider.input(show_page, [state, page_slider, drop_hf], [annotated, rendered, raw, page_json],
                        api_visibility="private")
    drop_hf.change(show_page, [state, page_slider, drop_hf], [annotated, rendered, raw, page_json],
                   api_visibility="private")
    return upload, [server_urls, served_model]
