"""The Region tab and the /region_text endpoint: the text of a marked rectangle."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData

from pipelines import Element, ParseOptions, PipelineError, list_models, load_document, load_pipeline
from pipelines.catalogue import DEFAULT_MODEL
from pipelines.region import box_from_values, display_image, editor_region, format_box, read_region
from pipelines.render.draw import draw_elements
from ui.common import (
    model_choice, model_event, ModelLists, uploaded_file,
    LATEX, MODEL_EVENTS, PAGE_TIME_LIMIT_S, UPLOAD_TYPES, load_page, parse_region, save_image, session_pipeline,
    user_error,
)


def region_models() -> list[tuple[str, str]]:
    return [model_choice(spec, f"{spec.label} ({'region prompt' if 'region_text' in spec.modes else 'reads the crop'})")
            for spec in list_models()]


def region_load(file_path, page_number, page_state=None):
    """The page on the marking canvas (scaled down to DISPLAY_MAX_SIDE), and where its original is.
    The same page again (a change event repeated when the tab first shows) keeps the box typed or
    painted meanwhile."""
    if not file_path:
        return None, None, "", ""
    source = [file_path, int(page_number or 1)]
    if page_state and page_state.get("source") == source:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    page = load_page(file_path, page_number)
    original = save_image(page.image, "region_page.png")
    editor = {"background": display_image(page.image), "layers": [], "composite": None}
    width, height = page.size
    ready = (f"Page {page.number + 1} of {Path(file_path).name}: {width} x {height} px. Paint over the region "
             "to read, or type its box.")
    return editor, {"original": original, "size": [width, height], "source": source}, "", ready


def region_from_editor(value, page_state):
    """What the user painted -> the region box in page pixels (the numeric box shows it)."""
    if not page_state:
        return gr.skip()
    try:
        box = editor_region(value, tuple(page_state["size"]))
    except PipelineError as error:
        raise gr.Error(error.message) from None
    return format_box(box) if box else gr.skip()


def region_read(page_state, model, box_text, max_new_tokens, server_urls="", served_model=""):
    """The text in the region: the page with the box drawn where it was marked, and the text."""
    if not page_state:
        raise gr.Error("Upload an image or a PDF first (here or in the Parse tab).")
    region = parse_region(box_text)
    if region is None:
        raise gr.Error("Mark a region on the page (paint over it) or type x1, y1, x2, y2 in page pixels.")
    page = load_page(page_state["original"], 1)
    try:
        result = read_region(session_pipeline(model, server_urls, served_model), page, region, ParseOptions(
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
        region = box_from_values(box)
        document = load_document(uploaded_file(file), pages=str(page))
        options = ParseOptions(max_new_tokens=max_new_tokens or None, time_limit_s=PAGE_TIME_LIMIT_S)
        return read_region(load_pipeline(model), document.pages[0], region, options).to_dict()
    except Exception as error:  # noqa: BLE001
        raise user_error(error, "Reading the region") from None


def build_region_tab(model_lists: ModelLists, server: list[gr.Textbox]) -> gr.File:
    page_state = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            region_file = gr.File(label="Image or PDF", file_types=UPLOAD_TYPES, type="filepath",
                                  elem_id="region-file")
            page_number = gr.Number(1, label="Page", precision=0, minimum=1)
            model = gr.Dropdown(region_models(), value=DEFAULT_MODEL, label="Model", elem_id="region-model")
            model_lists.add(model, region_models)
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
        trigger(region_load, [region_file, page_number, page_state], [editor, page_state, box, info], **private)
    editor.change(region_from_editor, [editor, page_state], box, **private)
    read.click(model_event(region_read), [page_state, model, box, max_new_tokens, *server], [marked, text, info, result_json],
               **MODEL_EVENTS, **private)
    return region_file
