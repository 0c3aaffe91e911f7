"""End to end: `python app.py` in a subprocess, driven over REST and through gradio_client.

Pages are rendered by the test from known text, so the OCR output can be checked against it.
One server per module; every parse uses the CPU "classic" engine (no downloads).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from pipelines import CATEGORIES

from tests.app_server import REPO_ROOT, running_app
from tests.pages import PAGE_ONE, PAGE_SIZE, PAGE_TWO, PDF_RESOLUTION, character_error_rate, page_text, write_pdf, write_png

MAX_CER = 0.05
PARSE_TIMEOUT_S = 180  # the first parse loads the OCR and layout models
HTML = b"<!DOCTYPE html>\n<html><head><title>x</title></head><body><p>not a picture</p></body></html>\n"


@pytest.fixture(scope="module")
def base_url():
    with running_app() as url:
        yield url


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("e2e_pages")
    html = folder / "x.png"
    html.write_bytes(HTML)
    return {
        "png": write_png(folder / "page.png", PAGE_ONE),
        "pdf": write_pdf(folder / "two_pages.pdf", (PAGE_ONE, PAGE_TWO)),
        "html": html,
    }


def check_elements(elements: list[dict], width: int, height: int, expected_text: str) -> None:
    """Boxes inside the page, known categories, and text matching what was drawn."""
    assert isinstance(elements, list) and elements, "no elements"
    for element in elements:
        bbox = element["bbox"]
        assert isinstance(bbox, list) and len(bbox) == 4, element
        assert all(type(v) is int for v in bbox), f"non-integer bbox {bbox}"
        x1, y1, x2, y2 = bbox
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, f"bbox {bbox} outside {width}x{height}"
        assert element["category"] in CATEGORIES, element
        assert isinstance(element["text"], str)
    assert any(e["category"] == "Text" for e in elements), [e["category"] for e in elements]
    recognised = "\n".join(e["text"] for e in elements)
    cer = character_error_rate(expected_text, recognised)
    assert cer < MAX_CER, f"character error rate {cer:.3f}\nexpected:\n{expected_text}\nrecognised:\n{recognised}"


def post(base_url: str, path: Path | None = None, *, content: bytes | None = None, name: str | None = None,
         **form) -> requests.Response:
    data = path.read_bytes() if path is not None else content
    filename = name or (path.name if path is not None else "upload")
    return requests.post(f"{base_url}/analyze_layout", files={"file": (filename, data)},
                         data=form, timeout=PARSE_TIMEOUT_S)


def error_code(response: requests.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return body["error"]["code"]


# ------------------------------------------------------------------------------------------- REST


def test_health(base_url):
    response = requests.get(f"{base_url}/health", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_models_lists_classic_with_its_modes(base_url):
    response = requests.get(f"{base_url}/models", timeout=10)
    assert response.status_code == 200
    models = {m["key"]: m for m in response.json()["models"]}
    assert "classic" in models, list(models)
    classic = models["classic"]
    assert classic["modes"] == ["layout_all", "layout_only", "text_only"]
    assert classic["default_mode"] == "layout_all"
    assert classic["can_chat"] is False and classic["engine"] == "classic"


def test_rest_png_layout_all(base_url, files):
    response = post(base_url, files["png"], model="classic", mode="layout_all")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "classic" and body["mode"] == "layout_all"
    assert body["source"] == "page.png"
    assert len(body["pages"]) == 1
    page = body["pages"][0]
    width, height = Image.open(files["png"]).size
    assert (page["width"], page["height"]) == (width, height) == PAGE_SIZE
    assert page["page"] == 0
    assert "elements" in body and body["elements"] == page["elements"]
    check_elements(page["elements"], width, height, page_text(PAGE_ONE))
    # The page's Markdown carries the same text, and the timings are real numbers.
    assert character_error_rate(page_text(PAGE_ONE), page["markdown"].replace("#", "")) < MAX_CER
    assert page["timings"]["total_s"] > 0 and body["timings"]["total_s"] >= page["timings"]["total_s"]


def test_rest_pdf_second_page_only(base_url, files):
    response = post(base_url, files["pdf"], model="classic", mode="layout_all", pages="2",
                    dpi=str(PDF_RESOLUTION))
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["pages"]) == 1
    page = body["pages"][0]
    assert page["page"] == 1, "page numbers are 0-based positions in the source document"
    # Rendered at the PDF's own resolution, the page comes back at the size it was drawn.
    assert abs(page["width"] - PAGE_SIZE[0]) <= 1 and abs(page["height"] - PAGE_SIZE[1]) <= 1, page
    assert body["elements"] == page["elements"]
    check_elements(page["elements"], page["width"], page["height"], page_text(PAGE_TWO))
    recognised = " ".join(e["text"] for e in page["elements"])
    assert "River Water" not in recognised, "page 1's text leaked into a page-2-only parse"


def test_rest_html_named_png_is_refused(base_url, files):
    response = post(base_url, files["html"], model="classic")
    assert response.status_code == 400, response.text
    assert error_code(response) == "unsupported_type"
    assert "not an image or PDF" in response.json()["error"]["message"]


def test_rest_empty_file_is_refused(base_url):
    response = post(base_url, content=b"", name="empty.png", model="classic")
    assert response.status_code == 400, response.text
    assert error_code(response) == "empty_file"


def test_rest_unknown_mode_is_422(base_url, files):
    response = post(base_url, files["png"], model="classic", mode="nonsense")
    assert response.status_code == 422, response.text
    assert error_code(response) == "unknown_mode"


def test_rest_unknown_model_is_400(base_url, files):
    response = post(base_url, files["png"], model="nope")
    assert response.status_code == 400, response.text
    assert error_code(response) == "unknown_model"
    assert "classic" in response.json()["error"]["message"], "the message should name the models on offer"


# ---------------------------------------------------------------------------------- gradio_client


@pytest.fixture(scope="module")
def client(base_url):
    from gradio_client import Client

    client = Client(base_url, verbose=False)
    yield client
    client.close()  # ends its heartbeat stream, so the server can shut down promptly


def parse_args(path: Path, pages: str = "", dpi: float = 200):
    from gradio_client import handle_file

    return (handle_file(str(path)), "classic", "layout_all", dpi, pages, None, None, None, False, "", "", "", "")


def test_view_api_shows_parse_and_hides_private_events(client):
    api = client.view_api(return_format="dict", print_info=False)
    named = api["named_endpoints"]
    assert set(named) == {"/parse", "/chat", "/compare", "/region_text"}, list(named)
    for private in ("/on_model_change", "/show_page", "/show_page_1", "/load_example", "/refresh_loaded",
                    "/show_mode_inputs", "/unload_model"):
        assert private not in named, f"UI-only event {private} is exposed: {list(named)}"
    assert not api["unnamed_endpoints"], api["unnamed_endpoints"]
    parameters = [p["parameter_name"] for p in named["/parse"]["parameters"]]
    assert parameters == ["file_path", "model", "mode", "dpi", "pages", "min_pixels", "max_pixels",
                          "max_new_tokens", "drop_headers_footers", "prompt", "region", "server_urls",
                          "served_model", "language"]
    assert len(named["/parse"]["returns"]) == 7  # the session state is not part of the API


def test_client_parse_png(client, files):
    result = client.predict(*parse_args(files["png"]), api_name="/parse")
    assert isinstance(result, (tuple, list)) and len(result) == 7, result
    annotated, rendered, raw, page_json, slider, timings, zip_path = result

    width, height = Image.open(files["png"]).size
    assert annotated and Path(annotated).is_file(), annotated
    with Image.open(annotated) as image:
        assert image.size == (width, height)
        # The annotation drew coloured boxes on the white-and-black page.
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
        coloured = (np.abs(pixels[..., 0] - pixels[..., 1]) + np.abs(pixels[..., 1] - pixels[..., 2])) > 60
        assert coloured.sum() > 1000, "no coloured boxes drawn on the page"

    assert isinstance(page_json, dict), type(page_json)
    assert (page_json["width"], page_json["height"]) == (width, height)
    assert page_json["model"] == "classic" and page_json["mode"] == "layout_all"
    check_elements(page_json["elements"], width, height, page_text(PAGE_ONE))

    assert PAGE_ONE[0] in raw and raw.lstrip().startswith("#"), raw
    assert PAGE_ONE[0] in rendered, rendered
    assert slider.get("visible") is False and slider.get("value") == 1, slider
    assert "classic" in timings and "layout_all" in timings, timings

    assert zip_path and Path(zip_path).is_file(), zip_path
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        assert {"page_001.png", "page_001.json", "page_001.md", "document.md"} <= names, names
        assert json.loads(archive.read("page_001.json"))["elements"] == page_json["elements"]
        assert archive.read("page_001.md").decode("utf-8").strip() == raw.strip()
        assert PAGE_ONE[0] in archive.read("document.md").decode("utf-8")
        with archive.open("page_001.png") as member, Image.open(member) as image:
            assert image.size == (width, height)


def test_client_parse_with_keyword_arguments_as_readme_shows(client):
    from gradio_client import handle_file

    image, markdown, raw_md, page_json, _, timings, zip_path = client.predict(
        file_path=handle_file(str(REPO_ROOT / "assets" / "paper_two_column.pdf")), model="classic",
        mode="layout_all", pages="1", api_name="/parse")
    assert page_json["page"] == 0 and (page_json["width"], page_json["height"]) == (1654, 2339)
    assert "Adaptive Lattice Smoothing" in raw_md
    assert "1 page(s)" in timings and Path(zip_path).is_file()


def test_client_parse_reads_the_russian_letter_with_its_language(client):
    from gradio_client import handle_file

    from tests.test_languages import needs_russian

    if needs_russian.args[0] and needs_russian.kwargs:  # skipif(condition): Tesseract with Russian is missing
        pytest.skip(needs_russian.kwargs["reason"])
    _, _, raw_md, page_json, _, _, _ = client.predict(
        file_path=handle_file(str(REPO_ROOT / "assets" / "letter_ru.png")), model="classic", mode="layout_all",
        language="rus+eng", api_name="/parse")
    assert "Уважаемый Павел Сергеевич!" in raw_md
    assert any(e["text"].startswith("Благодарим Вас за интерес") for e in page_json["elements"])


def test_client_html_upload_errors_then_app_keeps_serving(client, files):
    with pytest.raises(Exception) as raised:
        client.predict(*parse_args(files["html"]), api_name="/parse")
    assert "not an image or PDF" in str(raised.value), repr(raised.value)

    # The same client, right after the error: a valid parse (page 2 of the PDF) still works.
    result = client.predict(*parse_args(files["pdf"], pages="2", dpi=PDF_RESOLUTION), api_name="/parse")
    annotated, _rendered, raw, page_json, _slider, _timings, zip_path = result
    assert page_json["page"] == 1
    check_elements(page_json["elements"], page_json["width"], page_json["height"], page_text(PAGE_TWO))
    assert PAGE_TWO[0] in raw, raw
    with Image.open(annotated) as image:
        assert image.size == (page_json["width"], page_json["height"])
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        assert {"page_002.png", "page_002.json", "page_002.md", "document.md"} <= names, names
        assert not any(n.startswith("page_001") for n in names), names


def test_a_session_cannot_point_a_model_at_an_unlisted_server(client, files):
    from gradio_client import handle_file

    args = (handle_file(str(files["png"])), "qwen2_5_vl_3b", "text_only", 200, "", None, None, 16, False, "", "",
            "http://169.254.169.254/latest", "")
    with pytest.raises(Exception) as caught:
        client.predict(*args, api_name="/parse")
    assert "is not one the operator allows" in str(caught.value)
