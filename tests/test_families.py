"""Model families: exact prompts, box conventions mapped to page pixels, and output repair.

Outputs below are written in each model's documented format. Expected page boxes are worked out by
hand in the comments: page = (model coordinate + offset) * page side / coordinate extent, rounded
half up. Two pages with different aspect ratios: P1 = 1700 x 2200 (portrait letter at 200 dpi),
P2 = 2339 x 1654 (landscape A4 at 200 dpi).
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines.families import FAMILIES, ImageLimits, get_family
from pipelines.families.common import smart_resize
from pipelines.families.paddleocr_vl import otsl_to_html
from pipelines.families.repair import collapse_repetition, salvage_json_list
from pipelines.schema import MODES

P1 = (1700, 2200)
P2 = (2339, 1654)
NO_LIMITS = ImageLimits()
REGION = (340, 440, 1020, 880)  # a region marked on the page, in page pixels


def boxes(parsed):
    return [e.bbox for e in parsed.elements]


def categories(parsed):
    return [e.category for e in parsed.elements]


def has_warning(parsed, fragment):
    return any(fragment in w for w in parsed.warnings)


# ---------------------------------------------------------------- resize arithmetic

def test_smart_resize_qwen2_vl_defaults():
    # 2200/28 = 78.6 -> 79*28 = 2212; 1700/28 = 60.7 -> 61*28 = 1708; 2212*1708 = 3,778,096 is over
    # max 28*28*1280 = 1,003,520, so beta = sqrt(2200*1700 / 1,003,520) = 1.9305;
    # h = floor(2200/1.9305/28)*28 = floor(40.70)*28 = 1120; w = floor(1700/1.9305/28)*28 = 31*28 = 868.
    assert get_family("qwen2_vl").model_size(1700, 2200, NO_LIMITS) == (868, 1120)
    assert smart_resize(1700, 2200, factor=28, min_pixels=56 * 56, max_pixels=28 * 28 * 1280) == (868, 1120)


def test_smart_resize_dots_and_limits():
    dots = get_family("dots")
    # Under dots' max of 11,289,600 px the sides only round to multiples of 28.
    assert dots.model_size(*P1, NO_LIMITS) == (1708, 2212)
    # 2339/28 = 83.5 -> 84*28 = 2352; 1654/28 = 59.07 -> 59*28 = 1652.
    assert dots.model_size(*P2, NO_LIMITS) == (2352, 1652)
    # 5000x7000 = 35 Mpx: beta = sqrt(35e6 / 11,289,600) = 1.7608; 7000/1.7608/28 = 141.98 -> 3948;
    # 5000/1.7608/28 = 101.4 -> 2828.
    assert dots.model_size(5000, 7000, NO_LIMITS) == (2828, 3948)
    # A page limit from the engine replaces the family default.
    assert dots.model_size(*P1, ImageLimits(max_pixels=28 * 28 * 1280)) == (868, 1120)


def test_smart_resize_min_pixels_and_qwen3_factor():
    # 20x30 rounds to 28x28 = 784 < 3136: beta = sqrt(3136/600) = 2.286; ceil(30*2.286/28) = 3 -> 84,
    # ceil(20*2.286/28) = 2 -> 56.
    assert smart_resize(20, 30, factor=28, min_pixels=3136, max_pixels=1003520) == (56, 84)
    # Qwen3-VL: factor 32; 2200/32 = 68.75 -> 69*32 = 2208, 1700/32 = 53.1 -> 53*32 = 1696.
    assert get_family("qwen3_vl").model_size(*P1, NO_LIMITS) == (1696, 2208)
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 3000, factor=28, min_pixels=3136, max_pixels=1003520)


# ---------------------------------------------------------------- registry

def test_registry_names_modes_and_unknown_family():
    assert set(FAMILIES) == {"dots", "qwen2_vl", "qwen2_5_vl", "qwen3_vl", "got", "paddleocr_vl",
                             "lighton", "glm_ocr", "florence2", "deepseek_ocr"}
    for family in FAMILIES.values():
        assert set(family.modes) <= set(MODES), family.name
    with pytest.raises(KeyError, match="unknown model family 'nope'"):
        get_family("nope")


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_mode_builds_a_request(name):
    family = get_family(name)
    for mode in family.modes:
        request = family.request(mode, *P1, NO_LIMITS, region=REGION, prompt="What is this?")
        assert request.model_size == family.model_size(*P1, NO_LIMITS)
        assert request.max_new_tokens > 0
    with pytest.raises(ValueError, match="has no mode"):
        family.request("no_such_mode", *P1, NO_LIMITS)


def test_families_import_no_torch_or_transformers():
    code = ("import sys, pipelines.families; "
            "print(any(m.split('.')[0] in ('torch', 'transformers') for m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------- dots.ocr

DOTS_LAYOUT_PROMPT = """Please output the layout information from the PDF image, including each layout element's bbox, its category, and the corresponding text content within the bbox.

1. Bbox format: [x1, y1, x2, y2]

2. Layout Categories: The possible categories are ['Caption', 'Footnote', 'Formula', 'List-item', 'Page-footer', 'Page-header', 'Picture', 'Section-header', 'Table', 'Text', 'Title'].

3. Text Extraction & Formatting Rules:
    - Picture: For the 'Picture' category, the text field should be omitted.
    - Formula: Format its text as LaTeX.
    - Table: Format its text as HTML.
    - All Others (Text, Title, etc.): Format their text as Markdown.

4. Constraints:
    - The output text must be the original text from the image, with no translation.
    - All layout elements must be sorted according to human reading order.

5. Final Output: The entire output must be a single JSON object.
"""
DOTS_LAYOUT_ONLY_PROMPT = "Please output the layout information from this PDF image, including each layout's bbox and its category. The bbox should be in the format [x1, y1, x2, y2]. The layout categories for the PDF document include ['Caption', 'Footnote', 'Formula', 'List-item', 'Page-footer', 'Page-header', 'Picture', 'Section-header', 'Table', 'Text', 'Title']. Do not output the corresponding text. The layout result should be in JSON format."

DOTS_PAGE = (
    '[{"bbox": [100, 200, 800, 300], "category": "Title", "text": "# Annual Report"}, '
    '{"bbox": [120, 350, 1600, 1400], "category": "Table", "text": "<table><tr><td>a</td></tr></table>"}, '
    '{"bbox": [120, 1450, 900, 1500], "category": "Formula", "text": "$$\\\\frac{a}{b}$$"}, '
    '{"bbox": [120, 1550, 900, 1900], "category": "Picture"}]'
)


def test_dots_prompts_exact():
    dots = get_family("dots")
    assert dots.request("layout_all", *P1, NO_LIMITS).prompt == DOTS_LAYOUT_PROMPT
    assert dots.request("layout_only", *P1, NO_LIMITS).prompt == DOTS_LAYOUT_ONLY_PROMPT
    assert dots.request("text_only", *P1, NO_LIMITS).prompt == "Extract the text content from this image."


def test_dots_region_prompt_in_model_pixels():
    dots = get_family("dots")
    head = "Extract text from the given bounding box on the image (format: [x1, y1, x2, y2]).\nBounding Box:\n"
    # P1 -> 1708x2212: 340*1708/1700 = 341.6 -> 342; 440*2212/2200 = 442.4 -> 442;
    # 1020*1708/1700 = 1024.8 -> 1025; 880*2212/2200 = 884.8 -> 885.
    assert dots.request("region_text", *P1, NO_LIMITS, region=REGION).prompt == head + "[342, 442, 1025, 885]"
    # P2 -> 2352x1652: 340*2352/2339 = 341.9 -> 342; 440*1652/1654 = 439.5 -> 439 (439.47);
    # 1020*2352/2339 = 1025.7 -> 1026; 880*1652/1654 = 878.9 -> 879.
    assert dots.request("region_text", *P2, NO_LIMITS, region=REGION).prompt == head + "[342, 439, 1026, 879]"
    parsed = dots.parse("Quarterly revenue rose 12%.", "region_text", P1, (1708, 2212), region=REGION)
    assert boxes(parsed) == [REGION] and parsed.elements[0].text == "Quarterly revenue rose 12%."


def test_dots_layout_maps_model_pixels_to_two_page_shapes():
    dots = get_family("dots")
    parsed = dots.parse(DOTS_PAGE, "layout_all", P1, (1708, 2212))
    # x * 1700/1708, y * 2200/2212: 800 -> 796.25 -> 796, 200 -> 198.9 -> 199, 300 -> 298.4 -> 298,
    # 1600 -> 1592.5 -> 1593, 350 -> 348.1 -> 348, 1400 -> 1392.4 -> 1392 ...
    assert boxes(parsed)[:2] == [(100, 199, 796, 298), (119, 348, 1593, 1392)]
    assert categories(parsed) == ["Title", "Table", "Formula", "Picture"]
    assert [e.text for e in parsed.elements] == ["Annual Report", "<table><tr><td>a</td></tr></table>",
                                                 "\\frac{a}{b}", ""]
    assert parsed.markdown.startswith("# Annual Report\n\n<table>")
    assert "$$\n\\frac{a}{b}\n$$" in parsed.markdown
    assert parsed.warnings == []
    parsed = dots.parse(DOTS_PAGE, "layout_all", P2, (2352, 1652))
    # x * 2339/2352, y * 1654/1652: 100 -> 99.4 -> 99, 200 -> 200.2 -> 200, 800 -> 795.6 -> 796,
    # 1600 -> 1591.2 -> 1591, 1400 -> 1401.7 -> 1402.
    assert boxes(parsed)[:2] == [(99, 200, 796, 300), (119, 350, 1591, 1402)]


def test_dots_layout_only_and_text_only():
    dots = get_family("dots")
    parsed = dots.parse('[{"bbox": [0, 0, 1708, 2212], "category": "Text"}]', "layout_only", P1, (1708, 2212))
    assert boxes(parsed) == [(0, 0, 1700, 2200)] and parsed.elements[0].text == ""
    parsed = dots.parse("Hello\n\nWorld", "text_only", P1, (1708, 2212))
    assert boxes(parsed) == [(0, 0, 1700, 2200)] and parsed.markdown == "Hello\n\nWorld"


def test_dots_truncated_json_keeps_complete_elements():
    cut = DOTS_PAGE[:DOTS_PAGE.index('"category": "Picture"') + 5]
    parsed = get_family("dots").parse(cut, "layout_all", P1, (1708, 2212))
    assert categories(parsed) == ["Title", "Table", "Formula"]
    assert parsed.warnings == ["recovered 3 complete elements from truncated output"]


def test_dots_unknown_categories_map_to_closest_with_warning():
    out = ('[{"bbox": [10, 10, 100, 100], "category": "Figure"}, '
           '{"bbox": [10, 110, 100, 200], "category": "Header", "text": "ACME"}, '
           '{"bbox": [10, 210, 100, 300], "category": "Equation", "text": "x=1"}, '
           '{"bbox": [10, 310, 100, 400], "category": "Sidebar", "text": "aside"}]')
    parsed = get_family("dots").parse(out, "layout_all", P1, (1708, 2212))
    assert categories(parsed) == ["Picture", "Page-header", "Formula", "Text"]
    assert has_warning(parsed, "mapped unknown category 'Figure' to Picture")
    assert has_warning(parsed, "mapped unknown category 'Sidebar' to Text")


def test_dots_invalid_and_outside_boxes():
    out = ('[{"bbox": [10, 10, 100], "category": "Text", "text": "three numbers"}, '
           '{"bbox": ["a", 1, 2, 3], "category": "Text", "text": "not numbers"}, '
           '{"bbox": [500, 10, 400, 100], "category": "Text", "text": "x2 < x1"}, '
           '{"bbox": [3000, 3000, 3100, 3100], "category": "Text", "text": "off the page"}, '
           '{"bbox": [-50, 2100, 854, 2400], "category": "Page-footer", "text": "partly off"}]')
    parsed = get_family("dots").parse(out, "layout_all", P1, (1708, 2212))
    # Only the last survives, clipped: -50 -> -49.8 -> 0; 2100*2200/2212 = 2088.6 -> 2089;
    # 854*1700/1708 = 850.0 -> 850; 2400 -> 2387 -> clipped to 2200.
    assert boxes(parsed) == [(0, 2089, 850, 2200)]
    assert has_warning(parsed, "dropped 3 element(s) with an invalid box")
    assert has_warning(parsed, "dropped 1 element(s) whose box lies outside the page")
    assert has_warning(parsed, "clipped 1 box(es)")


def test_dots_repeated_elements_and_latex_escapes():
    item = '{"bbox": [10, %d, 500, %d], "category": "Text", "text": "Lorem ipsum"}'
    looping = "[" + ", ".join(item % (100 + 40 * i, 130 + 40 * i) for i in range(12)) + "]"
    parsed = get_family("dots").parse(looping, "layout_all", P1, (1708, 2212))
    assert len(parsed.elements) == 1
    assert has_warning(parsed, "repetition stopped: dropped 11 repeated element(s)")
    # Unescaped LaTeX backslashes in a JSON string are read, not fatal.
    parsed = get_family("dots").parse('[{"bbox": [1, 1, 50, 50], "category": "Formula", "text": "\\(x\\)"}]',
                                      "layout_all", P1, (1708, 2212))
    assert parsed.elements[0].text == "x"


# ---------------------------------------------------------------- Qwen2-VL

def test_qwen2_vl_prompts_and_region_in_thousandths():
    qwen = get_family("qwen2_vl")
    assert qwen.request("text_only", *P1, NO_LIMITS).prompt == "Read all the text in the image."
    # P1: 340/1700 = 0.2 -> 200, 440/2200 -> 200, 1020/1700 -> 600, 880/2200 -> 400.
    assert qwen.request("region_text", *P1, NO_LIMITS, region=REGION).prompt == (
        "Read all the text in the region <|box_start|>(200,200),(600,400)<|box_end|>.")
    # P2: 340/2339 = 0.1454 -> 145, 440/1654 = 0.2660 -> 266, 1020/2339 = 0.4361 -> 436, 880/1654 -> 532.
    assert qwen.request("region_text", *P2, NO_LIMITS, region=REGION).prompt == (
        "Read all the text in the region <|box_start|>(145,266),(436,532)<|box_end|>.")
    request = qwen.request("free_prompt", *P1, NO_LIMITS, prompt="Find the logo")
    assert request.prompt == "Find the logo" and request.keep_special_tokens
    with pytest.raises(ValueError, match="free_prompt needs"):
        qwen.request("free_prompt", *P1, NO_LIMITS)
    with pytest.raises(ValueError, match="not on the"):
        qwen.request("region_text", *P1, NO_LIMITS, region=(5000, 5000, 6000, 6000))


def test_qwen2_vl_grounding_output_is_relative_thousandths():
    answer = ("The <|object_ref_start|>logo<|object_ref_end|><|box_start|>(100,50),(400,120)<|box_end|> "
              "is at the top.<|im_end|>")
    qwen = get_family("qwen2_vl")
    parsed = qwen.parse(answer, "free_prompt", P1, (868, 1120))
    # x/1000*1700, y/1000*2200: 100 -> 170, 50 -> 110, 400 -> 680, 120 -> 264.
    assert boxes(parsed) == [(170, 110, 680, 264)] and parsed.elements[0].text == "logo"
    assert parsed.markdown == "The logo is at the top."
    # P2: 100 -> 233.9 -> 234, 50 -> 82.7 -> 83, 400 -> 935.6 -> 936, 120 -> 198.5 -> 198 (198.48).
    assert boxes(qwen.parse(answer, "free_prompt", P2, (868, 616))) == [(234, 83, 936, 198)]
    plain = qwen.parse("Just words.", "free_prompt", P1, (868, 1120))
    assert boxes(plain) == [(0, 0, 1700, 2200)] and plain.markdown == "Just words."


# ---------------------------------------------------------------- Qwen2.5-VL and Qwen3-VL

# Our prompt (no official one asks for the 11 categories), in the cookbooks' bbox_2d/label shape.
QWEN_LAYOUT_PROMPT = (
    "Parse the layout of this document page. Output a JSON list with one object per layout element, "
    'in reading order: {"bbox_2d": [x1, y1, x2, y2], "label": category, "text": content}. The category '
    "is one of: Caption, Footnote, Formula, List-item, Page-footer, Page-header, Picture, "
    "Section-header, Table, Text, Title. Write a Table's text as HTML, a Formula's as LaTeX, any other "
    "text as Markdown, and leave a Picture's text empty. Copy the text exactly, without translating it."
)
QWEN_LAYOUT = """```json
[
  {"bbox_2d": [900, 300, 1600, 1000], "label": "Text", "text": "Right column."},
  {"bbox_2d": [100, 300, 800, 1000], "label": "Text", "text": "Left column."},
  {"bbox_2d": [100, 200, 800, 300], "label": "Title", "text": "Report"}
]
```"""


def test_qwen2_5_vl_layout_in_input_pixels_sorted_into_reading_order():
    qwen = get_family("qwen2_5_vl")
    assert qwen.request("text_only", *P1, NO_LIMITS).prompt == "Read all the text in the image."
    assert qwen.request("layout_all", *P1, NO_LIMITS).prompt == QWEN_LAYOUT_PROMPT
    assert get_family("qwen3_vl").request("layout_all", *P1, NO_LIMITS).prompt == QWEN_LAYOUT_PROMPT
    size = qwen.model_size(*P1, NO_LIMITS)
    assert size == (1708, 2212)  # under 16384*28*28 px: sides round to multiples of 28
    parsed = qwen.parse(QWEN_LAYOUT, "layout_all", P1, size)
    assert [e.text for e in parsed.elements] == ["Report", "Left column.", "Right column."]
    # x*1700/1708, y*2200/2212: 100 -> 99.5 -> 100, 200 -> 198.9 -> 199, 800 -> 796.3 -> 796, 300 -> 298.
    assert parsed.elements[0].bbox == (100, 199, 796, 298)
    # P2 at 2352x1652: 100*2339/2352 = 99.4 -> 99, 200*1654/1652 = 200.2 -> 200, 796, 300.4 -> 300.
    parsed = qwen.parse(QWEN_LAYOUT, "layout_all", P2, qwen.model_size(*P2, NO_LIMITS))
    assert parsed.elements[0].bbox == (99, 200, 796, 300)


def test_qwen3_vl_layout_is_relative_thousandths():
    qwen = get_family("qwen3_vl")
    out = '[{"bbox_2d": [100, 50, 900, 120], "label": "title", "text": "Report"}, {"bbox_2d": [100, 130, 900'
    parsed = qwen.parse(out, "layout_all", P1, (1696, 2208))
    # 100/1000*1700 = 170, 50/1000*2200 = 110, 900 -> 1530, 120 -> 264: the resize does not matter.
    assert boxes(parsed) == [(170, 110, 1530, 264)] and categories(parsed) == ["Title"]
    assert parsed.warnings == ["recovered 1 complete elements from truncated output"]
    # P2: 100 -> 233.9 -> 234, 50 -> 82.7 -> 83, 900 -> 2105.1 -> 2105, 120 -> 198.5 -> 198.
    assert boxes(qwen.parse(out, "layout_all", P2, (2336, 1664))) == [(234, 83, 2105, 198)]


def test_qwen_free_prompt_with_boxes_and_thinking():
    qwen = get_family("qwen3_vl")
    answer = '<think>Look for tables.</think>[{"bbox_2d": [0, 0, 500, 500], "label": "cat"}]'
    parsed = qwen.parse(answer, "free_prompt", P1, (1696, 2208))
    assert boxes(parsed) == [(0, 0, 850, 1100)] and parsed.warnings == []
    assert parsed.markdown == '[{"bbox_2d": [0, 0, 500, 500], "label": "cat"}]'


# ---------------------------------------------------------------- GOT-OCR2

def test_got_queries_and_processor_kwargs():
    got = get_family("got")
    assert got.request("text_only", *P1, NO_LIMITS).prompt == "OCR: "
    request = got.request("text_formatted", *P1, NO_LIMITS)
    assert request.prompt == "OCR with format: " and request.processor_kwargs == {"format": True}
    # The processor gets the box in page pixels and writes int(x/W*1000) into its query.
    request = got.request("region_text", *P1, NO_LIMITS, region=REGION)
    assert request.processor_kwargs == {"box": [340, 440, 1020, 880]}
    assert request.prompt == "[200, 200, 600, 400] OCR: "
    request = got.request("region_text", *P2, NO_LIMITS, region=(340.4, 440.6, 1020, 2000))
    assert request.processor_kwargs == {"box": [340, 441, 1020, 1654]}  # rounded, clipped to the page
    assert request.prompt == "[145, 266, 436, 1000] OCR: "


def test_got_output_is_one_element():
    got = get_family("got")
    parsed = got.parse("\\section{Intro}\nText<|im_end|>", "text_formatted", P1, (1024, 1024))
    assert boxes(parsed) == [(0, 0, 1700, 2200)] and parsed.elements[0].text == "\\section{Intro}\nText"
    parsed = got.parse("ACME Corp", "region_text", P2, (1024, 1024), region=REGION)
    assert boxes(parsed) == [REGION]


# ---------------------------------------------------------------- PaddleOCR-VL and GLM-OCR

def test_paddleocr_vl_prompts_and_outputs():
    paddle = get_family("paddleocr_vl")
    assert {m: paddle.request(m, *P1, NO_LIMITS).prompt for m in paddle.modes} == {
        "text_only": "OCR:", "table": "Table Recognition:",
        "formula": "Formula Recognition:", "chart": "Chart Recognition:"}
    table = paddle.parse("<fcel>Name<fcel>Qty<nl><fcel>Apple<fcel>3<nl>", "table", P1, (1344, 1736))
    assert categories(table) == ["Table"] and boxes(table) == [(0, 0, 1700, 2200)]
    assert table.elements[0].text == "<table><tr><td>Name</td><td>Qty</td></tr><tr><td>Apple</td><td>3</td></tr></table>"
    chart = paddle.parse("Month | Sales\nJan | 10\nFeb | 12", "chart", P1, (1344, 1736))
    assert categories(chart) == ["Table"]
    assert chart.elements[0].text == ("<table><tr><th>Month</th><th>Sales</th></tr>"
                                      "<tr><td>Jan</td><td>10</td></tr><tr><td>Feb</td><td>12</td></tr></table>")
    formula = paddle.parse("$$E = mc^2$$</s>", "formula", P1, (1344, 1736))
    assert categories(formula) == ["Formula"] and formula.elements[0].text == "E = mc^2"


def test_otsl_spans():
    # A header cell two columns wide (<lcel>) and a cell two rows tall (<ucel>).
    html = otsl_to_html("<fcel>Region<fcel>Sales<lcel><nl><fcel>North<fcel>1<fcel>2<nl><ucel><fcel>3<fcel>4<nl>")
    assert html == ('<table><tr><td>Region</td><td colspan="2">Sales</td></tr>'
                    '<tr><td rowspan="2">North</td><td>1</td><td>2</td></tr><tr><td>3</td><td>4</td></tr></table>')


def test_glm_ocr_prompts_and_outputs():
    glm = get_family("glm_ocr")
    assert {m: glm.request(m, *P1, NO_LIMITS).prompt for m in glm.modes} == {
        "text_only": "Text Recognition:", "table": "Table Recognition:", "formula": "Formula Recognition:"}
    parsed = glm.parse("\\[ a^2 + b^2 \\]", "formula", P2, (2352, 1652))
    assert categories(parsed) == ["Formula"] and parsed.elements[0].text == "a^2 + b^2"
    assert boxes(parsed) == [(0, 0, 2339, 1654)]
    parsed = glm.parse("<table><tr><td>1</td></tr></table>", "table", P1, (1708, 2212))
    assert categories(parsed) == ["Table"] and parsed.elements[0].text == "<table><tr><td>1</td></tr></table>"
    assert parsed.markdown == "<table><tbody><tr><td>1</td></tr></tbody></table>"  # sanitised HTML


# ---------------------------------------------------------------- LightOnOCR-2

def test_lighton_sends_image_alone_and_maps_image_boxes():
    lighton = get_family("lighton")
    assert lighton.request("text_only", *P1, NO_LIMITS).prompt == ""
    out = "# Results\n\nSee the chart.\n\n![image](image_1.png) 120,300,880,620\n\nIt rises."
    parsed = lighton.parse(out, "text_only", P1, (1204, 1540))
    assert categories(parsed) == ["Text", "Picture", "Text"]
    # 120/1000*1700 = 204, 300/1000*2200 = 660, 880 -> 1496, 620 -> 1364.
    assert parsed.elements[1].bbox == (204, 660, 1496, 1364)
    assert parsed.elements[0].text == "# Results\n\nSee the chart." and parsed.elements[2].text == "It rises."
    # P2: 120 -> 280.7 -> 281, 300 -> 496.2 -> 496, 880 -> 2058.3 -> 2058, 620 -> 1025.5 -> 1025 (1025.48).
    assert lighton.parse(out, "text_only", P2, (1540, 1092)).elements[1].bbox == (281, 496, 2058, 1025)
    plain = lighton.parse("# Title\n\nBody text.", "text_only", P1, (1204, 1540))
    assert boxes(plain) == [(0, 0, 1700, 2200)] and plain.markdown == "# Title\n\nBody text."


# ---------------------------------------------------------------- Florence-2

def test_florence2_prompts_and_region_bins():
    florence = get_family("florence2")
    assert florence.request("text_only", *P1, NO_LIMITS).prompt == "<OCR>"
    request = florence.request("text_regions", *P1, NO_LIMITS)
    assert request.prompt == "<OCR_WITH_REGION>" and request.keep_special_tokens
    assert request.model_size == (768, 768)
    # floor(v * 1000 / side): P1 340*1000/1700 = 200, 440*1000/2200 = 200, 600, 400.
    assert florence.request("region_text", *P1, NO_LIMITS, region=REGION).prompt == (
        "<REGION_TO_OCR><loc_200><loc_200><loc_600><loc_400>")
    # P2: 145.4 -> 145, 266.0 -> 266, 436.1 -> 436, 532.0 -> 532.
    assert florence.request("region_text", *P2, NO_LIMITS, region=REGION).prompt == (
        "<REGION_TO_OCR><loc_145><loc_266><loc_436><loc_532>")


FLORENCE_LINES = ("</s><s>Total due<loc_100><loc_50><loc_400><loc_50><loc_400><loc_80><loc_100><loc_80>"
                  "Invoice 42<loc_100><loc_10><loc_300><loc_10><loc_300><loc_30><loc_100><loc_30></s>")


def test_florence2_quads_map_to_bin_centres_in_reading_order():
    florence = get_family("florence2")
    parsed = florence.parse(FLORENCE_LINES, "text_regions", P1, (768, 768))
    assert [e.text for e in parsed.elements] == ["Invoice 42", "Total due"]
    # (n + 0.5)/1000 * side: P1 x 100 -> 170.85 -> 171, y 50 -> 111.1 -> 111, x 400 -> 680.85 -> 681,
    # y 80 -> 177.1 -> 177.
    assert parsed.elements[1].bbox == (171, 111, 681, 177)
    # P2: x 100 -> 235.07 -> 235, y 50 -> 83.5 -> 84 (83.527), x 400 -> 936.8 -> 937, y 80 -> 133.1 -> 133.
    assert florence.parse(FLORENCE_LINES, "text_regions", P2, (768, 768)).elements[1].bbox == (235, 84, 937, 133)
    cut = florence.parse(FLORENCE_LINES[:-40], "text_regions", P1, (768, 768))
    assert [e.text for e in cut.elements] == ["Total due"]
    assert cut.warnings == ["recovered 1 complete elements from truncated output"]
    plain = florence.parse("</s><s>Invoice 42 Total due</s>", "text_only", P1, (768, 768))
    assert plain.elements[0].text == "Invoice 42 Total due"


# ---------------------------------------------------------------- DeepSeek-OCR

DEEPSEEK_PAGE = """<|ref|>title<|/ref|><|det|>[[205, 132, 790, 157]]<|/det|>
# DeepSeek-OCR: Contexts Optical Compression

<|ref|>sub_title<|/ref|><|det|>[[450, 263, 547, 283]]<|/det|>
## Abstract

<|ref|>image<|/ref|><|det|>[[120, 300, 875, 504]]<|/det|>


<|ref|>equation<|/ref|><|det|>[[114, 553, 430, 575]]<|/det|>
\\[y' = 1 - y^2\\]

<|ref|>text<|/ref|><|det|>[[115, 306, 882, 565]]<|/det|>
We present DeepSeek-OCR.<｜end▁of▁sentence｜>"""


def test_deepseek_prompts():
    deepseek = get_family("deepseek_ocr")
    request = deepseek.request("layout_all", *P1, NO_LIMITS)
    assert request.prompt == "<|grounding|>Convert the document to markdown." and request.keep_special_tokens
    assert deepseek.request("text_only", *P1, NO_LIMITS).prompt == "Free OCR."


def test_deepseek_blocks_map_from_999_scale_in_model_order():
    deepseek = get_family("deepseek_ocr")
    parsed = deepseek.parse(DEEPSEEK_PAGE, "layout_all", P1, (1024, 1024))
    assert categories(parsed) == ["Title", "Section-header", "Picture", "Formula", "Text"]
    assert [e.text for e in parsed.elements] == [
        "DeepSeek-OCR: Contexts Optical Compression", "Abstract", "", "y' = 1 - y^2", "We present DeepSeek-OCR."]
    # x/999*1700, y/999*2200: 205 -> 348.8 -> 349, 132 -> 290.7 -> 291, 790 -> 1344.3 -> 1344,
    # 157 -> 345.7 -> 346.
    assert parsed.elements[0].bbox == (349, 291, 1344, 346)
    assert parsed.warnings == []
    # P2: 205*2339/999 = 480.0 -> 480, 132*1654/999 = 218.5 -> 219 (218.55), 790 -> 1849.6 -> 1850,
    # 157 -> 259.9 -> 260.
    assert deepseek.parse(DEEPSEEK_PAGE, "layout_all", P2, (1024, 1024)).elements[0].bbox == (480, 219, 1850, 260)


def test_deepseek_truncated_unknown_label_and_bad_box():
    deepseek = get_family("deepseek_ocr")
    out = ("<|ref|>text<|/ref|><|det|>[[10, 10, 500, 40]]<|/det|>\nFirst.\n\n"
           "<|ref|>sidebar<|/ref|><|det|>[[10, 50, 500, 90]]<|/det|>\nAside.\n\n"
           "<|ref|>text<|/ref|><|det|>[[10, 90, 5]]<|/det|>\nBad box.\n\n"
           "<|ref|>text<|/ref|><|det|>[[10, 100, 5")
    parsed = deepseek.parse(out, "layout_all", P1, (1024, 1024))
    assert [e.text for e in parsed.elements] == ["First.", "Aside."]
    assert categories(parsed) == ["Text", "Text"]
    assert has_warning(parsed, "recovered 3 complete elements from truncated output")
    assert has_warning(parsed, "mapped unknown category 'sidebar' to Text")
    assert has_warning(parsed, "dropped 1 element(s) with an invalid box")


# ---------------------------------------------------------------- shared robustness

@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_empty_output_gives_empty_result_with_warning(name):
    family = get_family(name)
    for mode in family.modes:
        parsed = family.parse("  \n", mode, P1, family.model_size(*P1, NO_LIMITS), region=REGION)
        assert parsed.elements == [] and parsed.markdown == ""
        assert parsed.warnings == ["the model returned no text (empty output)"]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_endless_repetition_is_cut_in_plain_text(name):
    family = get_family(name)
    looping = "Invoice 2024\n" + "Thank you for your business. " * 40
    parsed = family.parse(looping, "text_only", P1, family.model_size(*P1, NO_LIMITS))
    assert parsed.elements[0].text == "Invoice 2024\nThank you for your business."
    assert has_warning(parsed, "repetition stopped: the output ended in a loop of 40 copies")


# One good box, one with x2 < x1, one wholly off the page, one crossing the right edge, per family.
PIXEL_BOXES = [[100, 200, 800, 300], [500, 10, 400, 100], [1800, 2300, 1900, 2400], [1500, 10, 1800, 100]]
SCALED_BOXES = [[100, 200, 800, 300], [500, 10, 400, 100], [1100, 1100, 1200, 1200], [900, 10, 1100, 100]]
DOTS_BOXES = "[" + ", ".join('{"bbox": %s, "category": "Text", "text": "t%d"}' % (b, i)
                             for i, b in enumerate(PIXEL_BOXES)) + "]"
QWEN25_BOXES = "[" + ", ".join('{"bbox_2d": %s, "label": "Text", "text": "t%d"}' % (b, i)
                               for i, b in enumerate(PIXEL_BOXES)) + "]"
QWEN3_BOXES = "[" + ", ".join('{"bbox_2d": %s, "label": "Text", "text": "t%d"}' % (b, i)
                              for i, b in enumerate(SCALED_BOXES)) + "]"
QWEN2_BOXES = " ".join("<|object_ref_start|>t%d<|object_ref_end|><|box_start|>(%d,%d),(%d,%d)<|box_end|>"
                       % (i, *b) for i, b in enumerate(SCALED_BOXES))
DEEPSEEK_BOXES = "\n".join("<|ref|>text<|/ref|><|det|>[%s]<|/det|>\nt%d" % (b, i) for i, b in enumerate(SCALED_BOXES))
LIGHTON_BOXES = "\n".join("![image](image_%d.png) %d,%d,%d,%d" % (i, *b) for i, b in enumerate(SCALED_BOXES))


@pytest.mark.parametrize("name, mode, output, expected", [
    # model pixels of 1708x2212: 800*1700/1708 = 796.3 -> 796; 1500 -> 1493.0; 1800 -> 1791.6 -> 1700
    # (clipped); y 100*2200/2212 = 99.5 -> 99 (99.46).
    ("dots", "layout_all", DOTS_BOXES, [(100, 199, 796, 298), (1493, 10, 1700, 99)]),
    # the same in Qwen2.5-VL's input pixels, then sorted top first (reading order)
    ("qwen2_5_vl", "layout_all", QWEN25_BOXES, [(1493, 10, 1700, 99), (100, 199, 796, 298)]),
    # 0-1000: 100 -> 170, 200 -> 440, 800 -> 1360, 300 -> 660; 900 -> 1530, 10 -> 22, 1100 -> 1870
    # -> 1700 (clipped), 100 -> 220.
    ("qwen3_vl", "layout_all", QWEN3_BOXES, [(1530, 22, 1700, 220), (170, 440, 1360, 660)]),
    ("qwen2_vl", "free_prompt", QWEN2_BOXES, [(170, 440, 1360, 660), (1530, 22, 1700, 220)]),
    ("lighton", "text_only", LIGHTON_BOXES, [(170, 440, 1360, 660), (1530, 22, 1700, 220)]),
    # 0-999: 100*1700/999 = 170.2 -> 170, 200*2200/999 = 440.4 -> 440, 800 -> 1361.4 -> 1361,
    # 300 -> 660.7 -> 661; 900 -> 1531.5 -> 1532, 10 -> 22.0 -> 22, 100 -> 220.2 -> 220.
    ("deepseek_ocr", "layout_all", DEEPSEEK_BOXES, [(170, 440, 1361, 661), (1532, 22, 1700, 220)]),
])
def test_invalid_outside_and_edge_boxes(name, mode, output, expected):
    family = get_family(name)
    parsed = family.parse(output, mode, P1, family.model_size(*P1, NO_LIMITS))
    assert boxes(parsed) == expected
    assert has_warning(parsed, "dropped 1 element(s) with an invalid box")
    assert has_warning(parsed, "dropped 1 element(s) whose box lies outside the page")
    assert has_warning(parsed, "clipped 1 box(es) that crossed the page edge")


def test_florence2_flat_quad_is_invalid():
    florence = get_family("florence2")
    out = "ok" + "<loc_100><loc_200><loc_800><loc_200><loc_800><loc_300><loc_100><loc_300>" + \
          "flat" + "<loc_500><loc_10><loc_500><loc_10><loc_500><loc_100><loc_500><loc_100>"
    parsed = florence.parse(out, "text_regions", P1, (768, 768))
    # (n + 0.5)/1000: 100.5*1.7 = 170.85 -> 171, 200.5*2.2 = 441.1 -> 441, 800.5*1.7 = 1360.85 -> 1361,
    # 300.5*2.2 = 661.1 -> 661.
    assert boxes(parsed) == [(171, 441, 1361, 661)]
    assert has_warning(parsed, "dropped 1 element(s) with an invalid box")


@pytest.mark.parametrize("name, mode, output, warning", [
    ("dots", "layout_all", "Sorry, here is the text: Hello", "the output is not the layout JSON"),
    ("qwen2_5_vl", "layout_all", "Hello world", "the output is not the layout JSON"),
    ("florence2", "text_regions", "Hello world", "no <loc_N> boxes in the output"),
    ("deepseek_ocr", "layout_all", "# Hello world", "no <|ref|><|det|> blocks in the output"),
])
def test_unstructured_answer_is_kept_as_text(name, mode, output, warning):
    family = get_family(name)
    parsed = family.parse(output, mode, P1, family.model_size(*P1, NO_LIMITS))
    assert boxes(parsed) == [(0, 0, 1700, 2200)] and parsed.elements[0].text == output
    assert has_warning(parsed, warning) and has_warning(parsed, "kept the output as one text element")


def test_repeated_lines_are_collapsed():
    text, warning = collapse_repetition("Header\n" + "Same line\n\n" * 8 + "End")
    assert text == "Header\nSame line\n\nEnd"
    assert warning == "repetition stopped: removed 7 repeated copies of a line"
    assert collapse_repetition("a\na\nb\n...") == ("a\na\nb\n...", None)
    # Wordless lines (empty table rows) repeat in real forms and are left alone.
    rows = "| Name | Date |\n" + "|  |  |\n" * 30
    assert collapse_repetition(rows) == (rows, None)


def test_json_salvage_shapes():
    assert salvage_json_list('{"bbox": [1, 2, 3, 4]}').items == [{"bbox": [1, 2, 3, 4]}]
    joined = salvage_json_list('{"a": 1}\n{"a": 2}\n{"a": "}{')
    assert joined.items == [{"a": 1}, {"a": 2}] and joined.truncated
    assert salvage_json_list("no json here").items == []
