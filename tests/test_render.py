"""Drawing, Markdown, sanitising, zip export, timings report."""
from __future__ import annotations

import io
import json
import zipfile
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from pipelines import CATEGORIES, DocumentResult, Element, PageResult
from pipelines.render.draw import CATEGORY_COLOURS, draw_elements, legend_html, line_width
from pipelines.render.export import export_zip
from pipelines.render.markdown import data_url_picture_ref, element_markdown, page_markdown
from pipelines.render.report import timings_markdown
from pipelines.render.sanitize import ALLOWED_TAGS, sanitize_html


def test_every_category_has_its_own_colour():
    assert set(CATEGORY_COLOURS) == set(CATEGORIES)
    assert len(set(CATEGORY_COLOURS.values())) == len(CATEGORIES)


def test_boxes_are_drawn_in_category_colour_at_page_coordinates():
    page = Image.new("RGB", (600, 400), "white")
    drawn = np.array(draw_elements(page, [Element((100, 150, 300, 350), "Table"), Element((350, 50, 550, 100), "Title")]))
    assert tuple(drawn[250, 100]) == CATEGORY_COLOURS["Table"]  # left edge of the table box
    assert tuple(drawn[349, 200]) == CATEGORY_COLOURS["Table"]  # bottom edge
    assert tuple(drawn[75, 350]) == CATEGORY_COLOURS["Title"]
    assert tuple(drawn[250, 200]) == (255, 255, 255)  # inside stays untouched
    assert tuple(drawn[390, 590]) == (255, 255, 255)  # outside too
    # The label "1 Table" sits in the margin left of the box, level with its top, clear of its
    # text; blended (a quarter page, three quarters colour), so text under a label still shows.
    blended = tuple(int(255 * 0.25 + c * 0.75) for c in CATEGORY_COLOURS["Table"])
    assert tuple(drawn[152, 98]) == blended
    assert tuple(drawn[152, 104]) == (255, 255, 255)  # inside the box, by its top-left corner
    assert np.array(page).min() == 255  # the original is not modified


def test_labels_never_cover_their_own_box_where_there_is_room_outside():
    page = Image.new("RGB", (600, 400), "white")
    # No margin to the left: the label goes above the box; at the top edge, right of it.
    drawn = np.array(draw_elements(page, [Element((0, 100, 300, 200), "Section-header"),
                                          Element((0, 0, 200, 60), "Title")]))
    assert (drawn[102:198, 3:297] == 255).all()  # the header's inside is untouched
    assert tuple(drawn[95, 2]) != (255, 255, 255)  # its label is just above it
    assert (drawn[3:57, 3:197] == 255).all()  # the title's inside too
    assert tuple(drawn[5, 205]) != (255, 255, 255)  # its label is right of it


def test_labels_keep_off_text_and_other_labels():
    from PIL import ImageDraw

    page = Image.new("RGB", (600, 600), "white")
    draw = ImageDraw.Draw(page)
    left_column, header, below = (50, 100, 290, 500), (310, 300, 560, 330), (310, 340, 560, 500)
    for x1, y1, x2, y2 in (left_column, below):  # lines of "text" filling both text boxes
        for y in range(y1 + 4, y2 - 8, 14):
            draw.rectangle((x1 + 3, y, x2 - 4, y + 7), fill="black")
    draw.rectangle((313, 305, 440, 324), fill="black")  # the header's words, at its left
    original = np.array(page)
    drawn = np.array(draw_elements(page, [Element(left_column, "Text"), Element(header, "Section-header"),
                                          Element(below, "Text")]))
    # Left of the header is the left column's text: its label goes above the header instead.
    assert (drawn[103:497, 53:286] == original[103:497, 53:286]).all()
    assert tuple(drawn[295, 312]) != (255, 255, 255)
    # No text anywhere is covered: labels went to white space.
    assert (drawn[original.min(axis=2) == 0] == 0).all()


def test_boxes_outside_the_page_are_clipped_not_crashing():
    page = Image.new("RGB", (200, 100), "white")
    drawn = np.array(draw_elements(page, [Element((150, 50, 400, 300), "Text"), Element((500, 500, 600, 600), "Text")]))
    assert drawn.shape == (100, 200, 3)
    assert tuple(drawn[75, 150]) == CATEGORY_COLOURS["Text"]


def test_line_width_scales_with_page():
    assert line_width(600, 800) == 2
    assert line_width(1700, 2200) == 4
    assert line_width(3400, 4400) == 7


def test_legend_lists_every_category_with_its_colour():
    legend = legend_html()
    for category, (r, g, b) in CATEGORY_COLOURS.items():
        assert category in legend and f"rgb({r},{g},{b})" in legend


class _TagCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def active_content(fragment: str) -> list[str]:
    """Everything in the fragment a browser could run or load as a page."""
    collector = _TagCollector()
    collector.feed(fragment)
    problems = []
    for tag, attrs in collector.tags:
        if tag not in ALLOWED_TAGS:
            problems.append(f"tag {tag}")
        for name, value in attrs.items():
            if name.startswith("on") or name == "style":
                problems.append(f"attribute {name}")
            if name in ("href", "src") and (value or "").strip().lower().startswith(("javascript:", "data:text")):
                problems.append(f"url {value}")
    return problems


@pytest.mark.parametrize("hostile", [
    '<script>alert(1)</script>', '<img src=x onerror="alert(1)">', '<a href="javascript:alert(1)">x</a>',
    '<iframe src="https://evil.example"></iframe>', '<svg onload=alert(1)>', '<a href="data:text/html,x">y</a>',
    '<div style="background:url(javascript:alert(1))">z</div>', '<IMG SRC=JaVaScRiPt:alert(1)>',
    '<table><tr><td><object data=x></object>1</td></tr></table>',
])
def test_sanitiser_removes_active_content(hostile):
    assert active_content(hostile)  # the sample really is hostile
    assert active_content(sanitize_html(hostile)) == []


def test_unknown_tags_are_shown_as_text_not_dropped():
    assert sanitize_html("-P-p<papersize> flag") == "-P-p&lt;papersize&gt; flag"
    assert sanitize_html("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert sanitize_html("H<sub>2</sub>O & a < b") == "H<sub>2</sub>O &amp; a &lt; b"


def test_sanitiser_keeps_tables_and_inline_pictures():
    table = '<table><tr><td colspan="2">a &amp; b</td></tr></table>'
    assert sanitize_html(table) == '<table><tbody><tr><td colspan="2">a &amp; b</td></tr></tbody></table>'
    picture = '<img src="data:image/png;base64,AAAA" alt="Picture">'
    assert sanitize_html(picture) == picture


@pytest.mark.parametrize("element, expected", [
    (Element((0, 0, 9, 9), "Title", "Deep  Learning"), "# Deep Learning"),
    (Element((0, 0, 9, 9), "Section-header", "1 Introduction"), "## 1 Introduction"),
    (Element((0, 0, 9, 9), "Formula", "E = mc^2"), "$$\nE = mc^2\n$$"),
    (Element((0, 0, 9, 9), "Formula", "$$x$$"), "$$\nx\n$$"),
    (Element((0, 0, 9, 9), "List-item", "apples"), "- apples"),
    (Element((0, 0, 9, 9), "Text", "Fish & chips > 3"), "Fish & chips > 3"),
    (Element((0, 0, 9, 9), "Text", "x <script>alert(1)</script> y"), "x &lt;script&gt;alert(1)&lt;/script&gt; y"),
    (Element((0, 0, 9, 9), "Table", "<table><tr><td onclick=x>1</td></tr></table>"),
     "<table><tbody><tr><td>1</td></tr></tbody></table>"),
    (Element((0, 0, 9, 9), "Picture"), ""),
])
def test_element_markdown(element, expected):
    assert element_markdown(element) == expected


E = (0, 0, 9, 9)


@pytest.mark.parametrize("element, expected", [
    # Document text is text: tags show as their characters and never load anything.
    (Element(E, "Text", 'See <img src=http://evil/x.png> & <a href="http://evil/">here</a>'),
     'See &lt;img src=http://evil/x.png&gt; &amp; &lt;a href="http://evil/"&gt;here&lt;/a&gt;'),
    (Element(E, "Title", "A <img src=http://evil/x.png>"), "# A &lt;img src=http://evil/x.png&gt;"),
    (Element(E, "Section-header", "<b>2</b> Methods"), "## &lt;b&gt;2&lt;/b&gt; Methods"),
    (Element(E, "List-item", "<i>pears</i>"), "- &lt;i&gt;pears&lt;/i&gt;"),
    (Element(E, "Caption", "Figure <sub>1</sub>"), "Figure &lt;sub&gt;1&lt;/sub&gt;"),
    (Element(E, "Footnote", "<a href=http://evil/>1</a>"), "&lt;a href=http://evil/&gt;1&lt;/a&gt;"),
    (Element(E, "Page-header", "<img src=//evil/x>"), "&lt;img src=//evil/x&gt;"),
    (Element(E, "Page-footer", "<img src=x onerror=alert(1)>"), "&lt;img src=x onerror=alert(1)&gt;"),
    # Gradio emits $$...$$ bodies as raw HTML for KaTeX: escaped, the browser still hands KaTeX "a < b".
    (Element(E, "Formula", "a < b <img src=http://evil/x.png>"), "$$\na &lt; b &lt;img src=http://evil/x.png&gt;\n$$"),
    # Markdown images in text would be fetched too: "![" is written so it shows, but opens no image.
    (Element(E, "Text", "Logo ![x](http://evil/y.png) end"), "Logo !&#91;x](http://evil/y.png) end"),
    (Element(E, "Caption", "![x][ref]\n\n[ref]: http://evil/y.png"), "!&#91;x][ref]\n\n[ref]: http://evil/y.png"),
    (Element(E, "Formula", "x $$ ![a](http://evil/y.png)"), "$$\nx $$ !&#91;a](http://evil/y.png)\n$$"),
    # A blank line ends an HTML block, and Markdown after it is parsed: tables lose images too.
    (Element(E, "Table", "<table><tr><td>\n\n![x](http://evil/y.png)\n\n</td></tr></table>"),
     "<table><tbody><tr><td>\n\n!&#91;x](http://evil/y.png)\n\n</td></tr></tbody></table>"),
    (Element(E, "Table", '<table><tr><td><img src="http://evil/x.png" alt="a">1</td></tr></table>'),
     '<table><tbody><tr><td><img alt="a">1</td></tr></tbody></table>'),
    # What models write as Markdown still renders.
    (Element(E, "Text", "**Bold** and `code`, [a link](https://example.org) & 5 > 3"),
     "**Bold** and `code`, [a link](https://example.org) & 5 > 3"),
])
def test_element_text_is_text_and_loads_nothing(element, expected):
    assert element_markdown(element) == expected


@pytest.mark.parametrize("fragment, expected", [
    ('<img src="http://evil/x.png" alt="a">', '<img alt="a">'),
    ('<img src="//evil/x.png">', "<img>"),
    ('<img src="x">', "<img>"),
    ('<img src="data:image/png;base64,AAAA">', '<img src="data:image/png;base64,AAAA">'),
    ('<a href="https://example.org/">x</a>', '<a href="https://example.org/" rel="noopener noreferrer nofollow">x</a>'),
])
def test_sanitiser_loads_images_only_from_data_urls(fragment, expected):
    assert sanitize_html(fragment) == expected


def rendered_images(markdown: str) -> list[str]:
    """The src of every <img> a CommonMark renderer with HTML allowed (like gr.Markdown) makes."""
    import markdown_it  # markdown-it-py comes with gradio
    collector = _TagCollector()
    collector.feed(markdown_it.MarkdownIt("commonmark").render(markdown))
    return [attrs["src"] for tag, attrs in collector.tags if tag == "img" and attrs.get("src")]


def test_rendered_page_loads_only_its_own_pictures():
    page = PageResult(page=0, width=100, height=100, model="classic", mode="layout_all", elements=[
        Element((0, 0, 100, 10), "Text", "<img src=http://evil/a.png> ![b](http://evil/b.png)"),
        Element((10, 20, 50, 60), "Picture"),
        Element((0, 70, 100, 90), "Table", "<table><tr><td><img src=http://evil/c.png>\n\n![d](http://evil/d.png)"
                                           "</td></tr></table>"),
    ])
    browser = page_markdown(page, data_url_picture_ref(Image.new("RGB", (100, 100), "white")))
    assert browser.startswith("&lt;img src=http://evil/a.png&gt; !&#91;b](http://evil/b.png)\n\n![Picture](data:image/png")
    assert '<img src="http' not in browser
    assert [src[:22] for src in rendered_images(browser)] == ["data:image/png;base64,"]
    saved = page_markdown(page)  # what the zip export and PageResult.markdown hold
    assert rendered_images(saved) == ["images/page_001_picture_02.png"]


def two_element_page() -> PageResult:
    return PageResult(page=2, width=100, height=100, model="classic", mode="layout_all", elements=[
        Element((0, 0, 100, 10), "Page-header", "Running head"),
        Element((10, 20, 50, 60), "Picture"),
        Element((0, 70, 100, 90), "Text", "Body text."),
    ])


def test_page_markdown_links_pictures_and_can_drop_headers():
    page = two_element_page()
    assert page_markdown(page) == "Running head\n\n![Picture](images/page_003_picture_02.png)\n\nBody text."
    assert page_markdown(page, drop_headers_footers=True).startswith("![Picture]")


def test_picture_data_url_is_the_cropped_region():
    image = Image.new("RGB", (100, 100), "white")
    image.paste((255, 0, 0), (10, 20, 50, 60))
    markdown = page_markdown(two_element_page(), data_url_picture_ref(image))
    url = markdown.split("![Picture](")[1].split(")")[0]
    assert url.startswith("data:image/png;base64,")
    import base64

    crop = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert crop.size == (40, 40) and crop.convert("RGB").getpixel((20, 20)) == (255, 0, 0)


def test_zip_export_contents(tmp_path):
    page = two_element_page()
    result = DocumentResult(source="x.pdf", model="classic", mode="layout_all", pages=[page])
    path = export_zip(result, [Image.new("RGB", (100, 100), "white")], tmp_path / "out.zip")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert names == {"page_003.png", "page_003.json", "page_003.md", "document.md", "document.json",
                         "images/page_003_picture_02.png"}
        assert json.loads(archive.read("page_003.json"))["elements"][2]["text"] == "Body text."
        assert DocumentResult.from_json(archive.read("document.json").decode()) == result
        assert Image.open(io.BytesIO(archive.read("page_003.png"))).size == (100, 100)


def test_timings_report_lists_pages_and_warnings():
    page = two_element_page()
    page.timings = {"layout_s": 0.25, "total_s": 1.5}
    page.warnings = ["page 3: rendered at 150 dpi instead of 200 dpi"]
    result = DocumentResult(source="x", model="classic", mode="layout_all", pages=[page], timings={"total_s": 2.0})
    report = timings_markdown(result)
    assert "| 3 | 0.25 | 1.50 | 3 |" in report
    assert "total_s 2.00 s" in report
    assert "Page-header 1, Picture 1, Text 1" in report
    assert "- page 3: rendered at 150 dpi instead of 200 dpi" in report
