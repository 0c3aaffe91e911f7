"""Region text: what the user paints on the displayed page -> page pixels -> each region-capable
family's own convention, exactly; cropped reading for models without a region mode; the endpoints."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipelines import PipelineError
from pipelines.families import ImageLimits, get_family
from pipelines.region import (
    crop_to_page, display_image, display_to_page, editor_region, margined_crop, painted_box, parse_box,
)
from pipelines.schema import Element


def layer(size: tuple[int, int], *rects: tuple[int, int, int, int]) -> np.ndarray:
    """An RGBA paint layer of the displayed page with each [x1, x2) x [y1, y2) rectangle painted."""
    pixels = np.zeros((size[1], size[0], 4), dtype=np.uint8)
    for x1, y1, x2, y2 in rects:
        pixels[y1:y2, x1:x2] = (230, 40, 40, 140)
    return pixels


def test_painted_box_is_the_rectangle_around_the_strokes():
    strokes = layer((300, 200), (10, 20, 40, 22), (100, 150, 101, 190))  # a line and a stroke
    assert painted_box(strokes) == (10, 20, 101, 190)
    assert painted_box(layer((300, 200))) is None
    with pytest.raises(ValueError):
        painted_box(np.zeros((5, 5, 3), dtype=np.uint8))


# (page size, the displayed size, painted rectangle on the display, region in page pixels)
PAGES = {
    # A4 at 150 dpi, shown at 1600 px: 1240 * 1600 / 1754 = 1131.1 -> 1131 px wide.
    # x: 100 * 1240 / 1131 = 109.6 -> 110, 500 * 1240 / 1131 = 548.2 -> 548;
    # y: 200 * 1754 / 1600 = 219.25 -> 219, 350 * 1754 / 1600 = 383.7 -> 384.
    "a4_portrait": ((1240, 1754), (1131, 1600), (100, 200, 500, 350), (110, 219, 548, 384)),
    # A landscape photo small enough to be shown as it is.
    "landscape": ((1000, 700), (1000, 700), (250, 100, 650, 400), (250, 100, 650, 400)),
}
# What each region-capable family writes for those regions.
MODEL_SPACE = {
    # dots.ocr: pixels of its smart-resized input: 1232 x 1764 and 1008 x 700.
    # 110 * 1232 / 1240 = 109.3 -> 109, 219 * 1764 / 1754 = 220.2 -> 220, 548 * 1232 / 1240 = 544.5 -> 544 ...
    ("dots", "a4_portrait"): "Bounding Box:\n[109, 220, 544, 386]",
    ("dots", "landscape"): "Bounding Box:\n[252, 100, 655, 400]",
    # Qwen2-VL: 0-1000 of the page, halves up: 110 / 1240 = 0.08871 -> 89, 219 / 1754 = 0.12486 -> 125.
    ("qwen2_vl", "a4_portrait"): "<|box_start|>(89,125),(442,219)<|box_end|>",
    ("qwen2_vl", "landscape"): "<|box_start|>(250,143),(650,571)<|box_end|>",
    # GOT-OCR2: box= in page pixels; its processor writes int() of the 0-1000 coordinates.
    ("got", "a4_portrait"): "[88, 124, 441, 218] OCR: ",
    ("got", "landscape"): "[250, 142, 650, 571] OCR: ",
    # Florence-2: location bins floor(v * 1000 / size).
    ("florence2", "a4_portrait"): "<REGION_TO_OCR><loc_88><loc_124><loc_441><loc_218>",
    ("florence2", "landscape"): "<REGION_TO_OCR><loc_250><loc_142><loc_650><loc_571>",
}


@pytest.mark.parametrize("family_name, page_name", sorted(MODEL_SPACE))
def test_a_painted_region_reaches_the_model_in_its_own_convention(family_name, page_name):
    page_size, display_size, painted, page_box = PAGES[page_name]
    shown = display_image(Image.new("RGB", page_size, "white"))
    assert shown.size == display_size
    value = {"background": np.asarray(shown.convert("RGBA")), "layers": [layer(display_size, painted)],
             "composite": None}
    assert editor_region(value, page_size) == page_box
    request = get_family(family_name).request("region_text", *page_size, ImageLimits(), region=page_box)
    assert MODEL_SPACE[family_name, page_name] in request.prompt, request.prompt
    if family_name == "got":
        assert request.processor_kwargs == {"box": list(page_box)}


def test_display_mapping_rounds_halves_up_and_clips():
    assert display_to_page((0.5, 0.5, 10, 10), (100, 100), (300, 300)) == (2, 2, 30, 30)  # 1.5 -> 2
    assert display_to_page((-5, -5, 120, 50), (100, 100), (200, 200)) == (0, 0, 200, 100)
    with pytest.raises(PipelineError):
        display_to_page((100, 10, 120, 20), (100, 100), (200, 200))
    assert editor_region(None, (100, 100)) is None
    assert editor_region({"background": None, "layers": [layer((50, 50))], "composite": None}, (100, 100)) is None


def test_typed_regions():
    assert parse_box("120, 160, 900, 400") == (120, 160, 900, 400)
    assert parse_box("[120.5 160] (900 400)") == (120.5, 160, 900, 400)
    assert parse_box("  ") is None
    for bad in ("1, 2, 3", "a, b, c, d", "10, 10, 5, 20"):
        with pytest.raises(PipelineError) as error:
            parse_box(bad)
        assert error.value.code == "bad_region"


def test_crops_are_read_on_a_margin_and_mapped_back():
    page = Image.new("RGB", (1000, 800), "white")
    crop, margin = margined_crop(page, (100, 200, 600, 300))
    assert margin == 50 and crop.size == (600, 200)  # 10 % of the 500 px side around it
    # An element the model found on the crop, partly in the margin, moved onto the page and clipped.
    assert crop_to_page(Element((40, 60, 300, 120), "Text", "x"), (100, 200, 600, 300), 50) == Element(
        (100, 210, 350, 270), "Text", "x")
    assert crop_to_page(Element((0, 0, 40, 40), "Text", "margin"), (100, 200, 600, 300), 50) is None


def test_classic_reads_a_cropped_paragraph_where_it_was_marked():
    from pipelines import load_document, load_pipeline
    from pipelines.region import read_region
    from tests.pages import PAGE_ONE, render_page

    page = load_document(render_page(*PAGE_ONE)).pages[0]
    region = (100, 280, 1150, 420)  # the first two body lines
    result = read_region(load_pipeline("classic"), page, region)
    assert result.method == "crop" and result.box == region and result.prompt is None
    words = " ".join(result.text.split()).casefold()
    assert "twelve sampling sites along the river" in words and "sampled twice a month" in words
    assert "quarterly report" not in words and "nitrates" not in words  # the title and line 3 lie outside
    for element in result.elements:
        x1, y1, x2, y2 = element.bbox
        assert 100 <= x1 < x2 <= 1150 and 280 <= y1 < y2 <= 420


def test_classic_reads_a_marked_table_as_a_table():
    from pathlib import Path

    from pipelines import load_document, load_pipeline
    from pipelines.region import read_region

    paper = Path(__file__).resolve().parent.parent / "assets" / "paper_two_column.png"
    page = load_document(str(paper)).pages[0]
    result = read_region(load_pipeline("classic"), page, (635, 1330, 1130, 1530))  # Table 1, page pixels
    assert result.method == "crop" and result.mode == "layout_all"
    [table] = [e for e in result.elements if e.category == "Table"]
    assert "<td>ALS (ours)</td><td>6.88</td><td>5.83</td><td>7.79</td>" in table.text
    assert 635 <= table.bbox[0] < table.bbox[2] <= 1130 and 1330 <= table.bbox[1] < table.bbox[3] <= 1530


@pytest.fixture(scope="module")
def feature():
    from tests.feature_app import shared_feature_app

    return shared_feature_app()


def test_region_endpoints_with_a_region_capable_twin(feature):
    import requests
    from gradio_client import Client, handle_file

    client = Client(feature.url, verbose=False)
    try:
        result = client.predict(handle_file(str(feature.png)), "got_ocr2", [100, 150, 500, 300], 1, 8,
                                api_name="/region_text")
    finally:
        client.close()
    # On the 620 x 877 page: int(100 / 620 * 1000) = 161, int(150 / 877 * 1000) = 171, ...
    assert result["method"] == "region" and result["box"] == [100, 150, 500, 300]
    assert result["prompt"] == "[161, 171, 806, 342] OCR:  (processor: {'box': [100, 150, 500, 300]})"
    assert [e["bbox"] for e in result["elements"]] == [[100, 150, 500, 300]]
    assert 0 < result["tokens"]["generated"] <= 8

    with open(feature.png, "rb") as handle:
        refused = requests.post(f"{feature.url}/region_text", files={"file": handle},
                                data={"box": "500, 150, 100, 300", "model": "got_ocr2"}, timeout=60)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "bad_region"


def test_the_region_tab_keeps_a_typed_box_when_the_same_page_loads_again(tmp_path):
    """Showing the tab for the first time repeats the upload's change event: the box typed in
    the meantime used to be wiped by the second load."""
    from tests.pages import PAGE_ONE, PAGE_TWO, write_pdf
    from ui.region_tab import region_load

    pdf = str(write_pdf(tmp_path / "two.pdf", (PAGE_ONE, PAGE_TWO)))
    _, state, box, info = region_load(pdf, 1, None)
    assert box == "" and state["source"] == [pdf, 1] and info.startswith("Page 1 of two.pdf")
    assert region_load(pdf, 1, state) == ({"__type__": "update"},) * 4  # nothing changes, the box stays
    _, other, box, info = region_load(pdf, 2, state)  # another page: a fresh canvas and an empty box
    assert box == "" and other["source"] == [pdf, 2] and info.startswith("Page 2 of two.pdf")
