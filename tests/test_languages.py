"""Other scripts in classic through Tesseract: the letter in Russian read for real, the TSV
parsing on a known answer, and clear errors (naming the Debian package) where a language or
Tesseract itself is missing. Needs Debian's tesseract-ocr and tesseract-ocr-rus; without them the
tests that run Tesseract are skipped, unless REQUIRE_TESSERACT=1 makes that a failure (CI)."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipelines import EngineCapabilityError, ParseOptions, PipelineError, load_pipeline
from pipelines.api import create_rest_app
from pipelines.engines import tesseract_ocr
from pipelines.layout import TextLine
from tests.pages import character_error_rate

ASSETS = Path(__file__).resolve().parent.parent / "assets"
LETTER_START = ("Благодарим Вас за интерес к продукции нашей компании и за запрос от 4 марта 2024 года. Сообщаем, "
                "что ООО «Северный ветер» готово поставить в адрес Вашего предприятия партию измерительного "
                "оборудования в соответствии с приложенной спецификацией")


def tesseract_with_russian() -> bool:
    tesseract_ocr.installed_languages.cache_clear()
    return {"rus", "eng"} <= set(tesseract_ocr.installed_languages())


needs_russian = pytest.mark.skipif(
    not tesseract_with_russian() and os.environ.get("REQUIRE_TESSERACT") != "1",
    reason="Tesseract with Russian is not installed (apt-get install tesseract-ocr tesseract-ocr-rus)")


@pytest.fixture(scope="module")
def classic():
    return load_pipeline("classic")


@pytest.fixture
def no_tesseract(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(tesseract_ocr.shutil, "which", lambda name: None if name == "tesseract" else real_which(name))
    tesseract_ocr.installed_languages.cache_clear()
    yield
    tesseract_ocr.installed_languages.cache_clear()


def test_tsv_words_become_lines_with_boxes_and_confidence():
    tsv = ("level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
           "4\t1\t1\t1\t1\t0\t10\t20\t300\t30\t-1\t\n"
           "5\t1\t1\t1\t1\t1\t10\t20\t100\t30\t90.5\tПривет\n"
           "5\t1\t1\t1\t1\t2\t120\t22\t190\t28\t80.5\tмир\n"
           "5\t1\t1\t1\t2\t1\t10\t60\t50\t30\t95\t \n"
           "5\t1\t2\t1\t1\t1\t400\t500\t80\t25\t70\t\"quoted\n")
    lines, scores = tesseract_ocr.lines_from_tsv(tsv)
    assert lines == [TextLine((10.0, 20.0, 310.0, 50.0), "Привет мир"), TextLine((400.0, 500.0, 480.0, 525.0), '"quoted')]
    assert scores == [pytest.approx(0.855), pytest.approx(0.70)]
    # Words far apart on one of Tesseract's lines (table cells) become separate lines.
    cells = tsv.splitlines()[0] + "\n" + "\n".join(
        f"5\t1\t1\t1\t1\t{n}\t{x}\t20\t{w}\t30\t90\t{text}"
        for n, (x, w, text) in enumerate([(10, 60, "Pens"), (80, 40, "blue"), (400, 20, "6"), (600, 60, "8.90")], 1))
    lines, _ = tesseract_ocr.lines_from_tsv(cells)
    assert [(l.text, l.box[0]) for l in lines] == [("Pens blue", 10.0), ("6", 400.0), ("8.90", 600.0)]


@needs_russian
def test_the_russian_letter_is_read_in_russian(classic):
    page = classic.parse_document(ASSETS / "letter_ru.png", "layout_all",
                                  options=ParseOptions(language="rus+eng")).pages[0]
    text = " ".join(e.text for e in page.elements)
    start = text.index("Благодарим")
    assert character_error_rate(LETTER_START, text[start:start + len(LETTER_START)]) < 0.03
    assert "Уважаемый Павел Сергеевич!" in text
    assert not any("punctuation only" in w for w in page.warnings)
    # Its boxes are in page pixels: the greeting is centred near y=550 on the 1240 px wide page.
    greeting = next(e for e in page.elements if "Уважаемый" in e.text)
    assert abs((greeting.bbox[0] + greeting.bbox[2]) / 2 - 620) < 40 and 530 < greeting.bbox[1] < 580


def test_the_built_in_recogniser_says_why_a_russian_page_reads_as_punctuation(classic):
    page = classic.parse_document(ASSETS / "letter_ru.png", "text_only").pages[0]
    assert any("choose its language (e.g. rus+eng)" in w for w in page.warnings)
    english = classic.parse_document(ASSETS / "invoice.png", "text_only").pages[0]
    assert not any("punctuation only" in w for w in english.warnings)


def test_a_missing_language_names_its_debian_package(classic):
    assert "fin" not in tesseract_ocr.installed_languages()
    with pytest.raises(EngineCapabilityError) as raised:
        classic.parse_document(ASSETS / "invoice.png", "text_only", options=ParseOptions(language="fin+eng"))
    assert raised.value.code == "language_unavailable" and raised.value.status == 422
    if shutil.which("tesseract"):  # only what is missing is named
        assert str(raised.value) == ("No Tesseract language data for fin: install the Debian package(s) "
                                     "tesseract-ocr-fin (on a Space: packages.txt).")


def test_missing_tesseract_names_the_packages(classic, no_tesseract):
    with pytest.raises(EngineCapabilityError, match="install the Debian packages tesseract-ocr tesseract-ocr-rus "
                                                    "tesseract-ocr-eng"):
        classic.parse_document(ASSETS / "invoice.png", "text_only", options=ParseOptions(language="rus+eng"))


@pytest.mark.parametrize("language", ["rus; rm -rf /", "-l", "../x", "RUS", "r", "a+b+c+d+e+f+g"])
def test_anything_but_language_codes_is_refused(language):
    with pytest.raises(PipelineError) as raised:
        ParseOptions(language=language)
    assert raised.value.code == "bad_option"


def test_rest_language_field_and_languages_route(no_tesseract):
    with TestClient(create_rest_app(), raise_server_exceptions=False) as client:
        image = (ASSETS / "invoice.png").read_bytes()
        bad = client.post("/analyze_layout", files={"file": ("a.png", image)}, data={"language": "rus;id"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_option"
        missing = client.post("/analyze_layout", files={"file": ("a.png", image)}, data={"language": "rus"})
        assert missing.status_code == 422 and missing.json()["error"]["code"] == "language_unavailable"
        assert "tesseract-ocr-rus" in missing.json()["error"]["message"]
        listed = {l["code"]: l for l in client.get("/languages").json()["languages"]}
        assert listed["rus"] == {"code": "rus", "name": "Russian", "installed": False, "debian_package": "tesseract-ocr-rus"}
        assert listed["chi_tra"]["debian_package"] == "tesseract-ocr-chi-tra"


@needs_russian
def test_rest_reads_russian_with_the_language_field():
    with TestClient(create_rest_app()) as client:
        answer = client.post("/analyze_layout", files={"file": ("letter.png", (ASSETS / "letter_ru.png").read_bytes())},
                             data={"language": "rus+eng", "mode": "text_only"})
        assert answer.status_code == 200
        assert "Уважаемый Павел Сергеевич!" in " ".join(e["text"] for e in answer.json()["elements"])
        assert {l["code"] for l in client.get("/languages").json()["languages"] if l["installed"]} >= {"rus", "eng"}
