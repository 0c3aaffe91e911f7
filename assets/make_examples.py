"""Generate the example documents offered in the ChatVLMLLM examples gallery.

Run ``python assets/make_examples.py``: writes paper_two_column.png/.pdf, invoice.png, letter_ru.png and
receipt.jpg next to this script. All content is invented; the output is deterministic (no randomness).
Needs Pillow and the DejaVu TTF fonts (fonts-dejavu-core, or the copy bundled with matplotlib).
``reportlab`` is needed ONLY to regenerate paper_two_column.pdf (``pip install reportlab``);
the app itself never imports it.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

OUT = Path(__file__).resolve().parent
A4 = (1240, 1754)  # A4 at 150 dpi; 11 pt is about 23 px
PT = 72 / 150  # PDF points per pixel
M = 110  # page margin, px
INK, GREY, RULE = (20, 20, 20), (95, 95, 95), (60, 60, 60)
STYLES = {"serif": "DejaVuSerif.ttf", "serif-b": "DejaVuSerif-Bold.ttf", "serif-i": "DejaVuSerif-Italic.ttf",
          "sans": "DejaVuSans.ttf", "sans-b": "DejaVuSans-Bold.ttf",
          "mono": "DejaVuSansMono.ttf", "mono-b": "DejaVuSansMono-Bold.ttf"}
Font = tuple[str, int]  # (style, size in px)
Color = tuple[int, int, int]


def font_dirs() -> list[Path]:
    """Directories that may hold the DejaVu fonts, most likely first."""
    dirs = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts"), Path("/usr/local/share/fonts"),
            Path.home() / ".local/share/fonts", Path.home() / ".fonts", Path("/Library/Fonts")]
    try:
        import matplotlib
        dirs.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf")
    except ImportError:
        pass
    return [d for d in dirs if d.is_dir()]


@lru_cache(maxsize=None)
def font_path(style: str) -> str:
    for d in font_dirs():
        if hit := next(d.rglob(STYLES[style]), None):
            return str(hit)
    raise SystemExit(f"Font {STYLES[style]} not found in {[str(d) for d in font_dirs()]}; install it with "
                     "'apt-get install fonts-dejavu-core' (or 'pip install matplotlib', which bundles DejaVu).")


@lru_cache(maxsize=None)
def pil_font(style: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_path(style), px)


def width(s: str, font: Font) -> float:
    return pil_font(*font).getlength(s)


def ascent(font: Font) -> int:
    return pil_font(*font).getmetrics()[0]


class PilCanvas:
    """Raster back end, one RGB image per page. Coordinates are px; text y is its ascender line."""

    def __init__(self, size: tuple[int, int], bg: Color = (255, 255, 255)) -> None:
        self.size, self.bg, self.pages = size, bg, list[Image.Image]()
        self.new_page()

    def new_page(self) -> None:
        self.pages.append(Image.new("RGB", self.size, self.bg))
        self.draw = ImageDraw.Draw(self.pages[-1])

    def text(self, x: float, y: float, s: str, font: Font, fill: Color = INK) -> None:
        self.draw.text((x, y), s, font=pil_font(*font), fill=fill, anchor="la")

    def justified(self, x: float, y: float, words: list[str], font: Font, w: float) -> None:
        gap = (w - sum(width(t, font) for t in words)) / (len(words) - 1)
        for t in words:
            self.text(x, y, t, font)
            x += width(t, font) + gap

    def line(self, pts: list[tuple[float, float]], w: int = 1, fill: Color = RULE) -> None:
        self.draw.line(pts, fill=fill, width=w, joint="curve")

    def rect(self, box: tuple[float, float, float, float], fill: Color) -> None:
        self.draw.rectangle(box, fill=fill)


class PdfCanvas:
    """Vector back end (reportlab) with the same coordinates, so the PDF gets a real text layer."""

    def __init__(self, path: Path, size: tuple[int, int]) -> None:
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont
        from reportlab.pdfgen.canvas import Canvas
        for style in STYLES:
            pdfmetrics.registerFont(TTFont(style, font_path(style)))
        self.string_width, self.h = pdfmetrics.stringWidth, size[1]
        self.c = Canvas(str(path), pagesize=(size[0] * PT, size[1] * PT), invariant=1)
        self.c.setTitle(TITLE)
        self.c.setAuthor("M. Ellison, T. Wierzba, P. Raman (fictional)")

    def new_page(self) -> None:
        self.c.showPage()

    def xy(self, x: float, y: float) -> tuple[float, float]:
        return x * PT, (self.h - y) * PT

    def text(self, x: float, y: float, s: str, font: Font, fill: Color = INK, tw: float = 0) -> None:
        t = self.c.beginText(*self.xy(x, y + ascent(font)))
        t.setFont(font[0], font[1] * PT)
        t.setFillColorRGB(*(v / 255 for v in fill))
        t.setWordSpace(tw)  # word spacing is PDF text state: always set it, or it leaks into later text
        t.textOut(s)
        self.c.drawText(t)

    def justified(self, x: float, y: float, words: list[str], font: Font, w: float) -> None:
        s = " ".join(words)  # reportlab encodes no-break spaces as spaces, which Tw stretches too
        spaces = s.count(" ") + s.count("\xa0")
        self.text(x, y, s, font, tw=(w * PT - self.string_width(s, font[0], font[1] * PT)) / spaces)

    def line(self, pts: list[tuple[float, float]], w: int = 1, fill: Color = RULE) -> None:
        self.c.setStrokeColorRGB(*(v / 255 for v in fill))
        self.c.setLineWidth(w * PT)
        self.c.lines([(*self.xy(*a), *self.xy(*b)) for a, b in zip(pts, pts[1:])])

    def rect(self, box: tuple[float, float, float, float], fill: Color) -> None:
        self.c.setFillColorRGB(*(v / 255 for v in fill))
        self.c.rect(*self.xy(box[0], box[3]), (box[2] - box[0]) * PT, (box[3] - box[1]) * PT, stroke=0, fill=1)


Canvas = PilCanvas | PdfCanvas  # both back ends offer text / justified / line / rect / new_page


def put(c: Canvas, x: float, y: float, s: str, font: Font, anchor: str = "l", fill: Color = INK) -> None:
    """One line of text whose left / centre / right (anchor "l" / "c" / "r") is at x."""
    c.text(x - {"l": 0, "c": 0.5, "r": 1}[anchor] * width(s, font), y, s, font, fill)


def block(c: Canvas, x: float, y: float, rows: list[str], font: Font, lead: int, anchor: str = "l",
          fill: Color = INK) -> float:
    """Several lines, one per row; returns the y below them."""
    for row in rows:
        put(c, x, y, row, font, anchor, fill)
        y += lead
    return y


def wrap(text: str, font: Font, w: float, indent: float = 0) -> list[list[str]]:
    """Greedy word wrap into lists of words; splits on plain spaces only, so no-break spaces hold."""
    lines: list[list[str]] = [[]]
    for word in text.split(" "):
        if lines[-1] and width(" ".join(lines[-1] + [word]), font) > w - (indent if len(lines) == 1 else 0):
            lines.append([])
        lines[-1].append(word)
    return lines


def draw_line(c: Canvas, x: float, y: float, words: list[str], font: Font, w: float, align: str,
              last: bool) -> None:
    """One wrapped line, aligned "l" / "c" / "r" or justified "j" (the last line of a paragraph stays left)."""
    if align == "j" and not last and len(words) > 1:
        c.justified(x, y, words, font, w)
    else:
        put(c, x + {"c": w / 2, "r": w}.get(align, 0), y, " ".join(words), font, align.replace("j", "l"))


def paragraph(c: Canvas, x: float, y: float, w: float, text: str, font: Font, lead: int, align: str = "j",
              indent: float = 0) -> float:
    """Wrapped paragraph with an optional first-line indent; returns the y below it."""
    lines = wrap(text, font, w, indent)
    for i, words in enumerate(lines):
        dx = indent if i == 0 else 0
        draw_line(c, x + dx, y, words, font, w - dx, align, i == len(lines) - 1)
        y += lead
    return y


def formula(c: Canvas, x: float, y: float, s: str, font: Font) -> None:
    """Centred formula; _{..} and ^{..} mark sub- and superscripts."""
    small: Font = (font[0], round(font[1] * 0.68))
    dy = {"_": ascent(font) + 0.22 * font[1] - ascent(small), "^": ascent(font) - 0.42 * font[1] - ascent(small)}
    runs = [(m[3], font, 0.0) if m[3] else (m[2], small, dy[m[1]])
            for m in re.finditer(r"([_^])\{([^}]*)\}|([^_^]+)", s)]
    x -= sum(width(t, f) for t, f, _ in runs) / 2
    for t, f, d in runs:
        c.text(x, y + d, t, f)
        x += width(t, f)


def table(c: Canvas, x: float, y: float, widths: list[float], rows: list[list[str]], fonts: tuple[Font, Font],
          row_h: int, align: str, head_fill: Color | None = None) -> float:
    """Grid table; fonts = (body, header) and row 0 is the header. Returns the y of the bottom rule."""
    right, top, lefts = x + sum(widths), y, list(accumulate([x] + widths))
    if head_fill:
        c.rect((x, y, right, y + row_h), head_fill)
    for r, row in enumerate(rows):
        c.line([(x, y), (right, y)], 2 if r < 2 else 1)
        for cell, cx, w, a in zip(row, lefts, widths, align):
            tx = {"l": cx + 10, "c": cx + w / 2, "r": cx + w - 10}[a]
            put(c, tx, y + row_h / 2 - 0.57 * fonts[0][1], cell, fonts[r == 0], a)
        y += row_h
    c.line([(x, y), (right, y)], 2)
    for vx in lefts:
        c.line([(vx, top), (vx, y)])
    return y


def save(img: Image.Image, name: str, **kw: Any) -> None:
    img.save(OUT / name, **kw)
    report(name)


def report(name: str) -> None:
    print(f"wrote {name:22s} {(OUT / name).stat().st_size / 1024:5.0f} KB")


# Paper markup: blank-line separated blocks. "# " heading, "$ " equation | tag, "% " caption | table rows
# (";" between rows, "," between cells), "! " paragraph without indent, "[" reference, else a paragraph.
TITLE = "Adaptive Lattice Smoothing for Low-Power Environmental Sensor Networks"
ABSTRACT = """Dense networks of inexpensive environmental sensors promise fine-grained maps of air quality, but their
readings are noisy, irregularly sampled and frequently missing. We present adaptive lattice smoothing (ALS), a
lightweight estimator that places sensor readings on a coarse spatial lattice and learns a per-cell smoothing strength
from the agreement between neighbouring devices. The method needs no calibration campaign, runs in under 40\xa0ms per
update on a microcontroller-class processor and degrades gracefully when up to half of the nodes are offline. On three
simulated deployments, ALS reduces the root-mean-square error of hourly particulate estimates by 18–31% relative to
inverse-distance weighting and matches a Gaussian-process baseline at one twentieth of its computational cost."""
PAPER = """# 1 Introduction

Low-cost particulate sensors make it possible to monitor urban air at a spatial resolution that reference stations
cannot provide. The price of this density is data quality: optical sensors drift with humidity, individual units
differ in their response, and network outages leave gaps lasting from minutes to days.

Classical interpolation methods treat every reading as equally trustworthy. Inverse-distance weighting is fast but
spreads the error of a faulty node over its neighbourhood, while Gaussian-process regression models uncertainty
explicitly but scales poorly with the number of devices.

We propose a middle ground: a lattice formulation whose cost does not grow with the number of sensors, and an
adaptive rule that sets the smoothing strength from local consistency alone.

# 2 Method

We partition the monitored area into a regular lattice of square cells with side length h and estimate the cell
values θ from the readings yᵢ by minimising the penalised loss

$ L(θ) = Σ_{i} w_{i} (y_{i} − ŷ_{i})^{2} + λ Σ_{c} ‖∇θ_{c}‖^{2} | (1)

! where ŷᵢ is the lattice value interpolated at sensor i, wᵢ is a confidence weight and λ sets the strength of the
smoothness penalty. The sparse normal equations are solved with a few warm-started conjugate-gradient iterations.
After each solve, a sensor whose residual is large compared with those of its neighbours receives a lower weight:

$ w_{i} ← exp(−r_{i}^{2} / 2σ^{2}) | (2)

! where rᵢ is the residual of sensor i and σ the median absolute residual nearby. The weights converge within a few
updates, and a node that recovers from a fault regains its influence automatically.

# 3 Experimental Setup

We simulate three deployments, Harbour, Campus and Ridge, with 48, 120 and 75 sensors whose readings suffer from
drift, gain errors and outages. All methods are tuned on the first week and tested on the remaining three.

% Table 1: RMSE (µg/m³) of hourly PM2.5 estimates; lower is better. | Method,Harbour,Campus,Ridge;
IDW,9.84,7.12,11.37;Kriging,8.21,6.40,9.95;GP,7.03,5.61,8.12;ALS (ours),6.88,5.83,7.79

# 4 Results

Table 1 summarises the main comparison. ALS improves on inverse-distance weighting by 30% on Harbour, 18% on Campus and
31% on Ridge, where a cluster of faulty sensors along the ridge line misleads the unweighted methods. The Gaussian
process remains slightly better on Campus, whose dense and regular layout suits a stationary covariance model.

Runtime tells a different story. A full update of the Gaussian process on Campus takes 0.8\xa0s on a desktop
processor, whereas ALS completes the same update in 38\xa0ms on a 240\xa0MHz microcontroller. This matters in
deployments where the gateway itself runs on batteries.

To study robustness we switched off a subset of the sensors before evaluation, repeating each setting ten times with
different subsets. Table 2 reports the average error as the fraction of offline sensors grows.

% Table 2: RMSE on Ridge versus the fraction of offline sensors. | Offline,IDW,GP,ALS;0%,11.37,8.12,7.79;
25%,12.90,8.97,8.31;50%,15.42,10.64,9.48;75%,21.08,14.33,13.95

Both estimators that model reliability degrade smoothly, but inverse-distance weighting deteriorates quickly once
whole neighbourhoods fall silent. With 75% of the sensors offline all methods struggle: no amount of smoothing can
replace coverage.

# 5 Discussion

The lattice resolution h is the only parameter chosen by hand. Cells that are too small contain few sensors and make
the adaptive weights unstable, while cells that are too large blur genuine local features such as busy road
junctions. Choosing h so that the median cell holds two to three sensors worked well in all three deployments. All
data in this study are simulated; a field trial with forty devices is in preparation.

# 6 Conclusion

We introduced adaptive lattice smoothing, a simple estimator for noisy sensor networks that runs on inexpensive
hardware. By learning where to trust each device from local agreement, it approaches the accuracy of far more
expensive models while remaining easy to deploy and to explain.

# References

[1] A. Norberg and L. Quist. Interpolation of sparse urban measurements. J. Imag. Res., 1(4):12–29, 2021.

[2] K. Osei. Gaussian processes on a budget. In Proc. Workshop on Frugal Learning, pp. 88–95, 2022.

[3] R. Delacroix and M. Ellison. Humidity drift in optical particle counters. Sensors and Fictions, 7:201–214, 2020.

[4] S. Yamada. Conjugate gradients for lattice problems. Notes in Invented Mathematics 12, 2019."""
BODY: Font = ("serif", 20)  # ~10 pt, usual for two-column papers
LEAD, GAP, COL_TOP, BOTTOM = 27, 34, 120, A4[1] - 125
COLW = (A4[0] - 2 * M - GAP) / 2


def paper_chrome(c: Canvas, page: int) -> None:
    """Running header with its rule, and the page number."""
    put(c, M, 54, "Journal of Imaginary Results, Vol. 3, No. 2 (2024)", ("serif-i", 18), fill=GREY)
    put(c, A4[0] - M, 54, "Ellison, Wierzba and Raman", ("serif-i", 18), "r", GREY)
    c.line([(M, 84), (A4[0] - M, 84)])
    put(c, A4[0] / 2, A4[1] - 84, str(page), ("serif", 19), "c")


def paper_title(c: Canvas) -> float:
    """Full-width title, authors and abstract; returns the y where the columns start."""
    y = paragraph(c, M + 60, 128, A4[0] - 2 * M - 120, TITLE, ("serif-b", 36), 48, "c")
    y = block(c, A4[0] / 2, y + 14, ["Mara Ellison¹, Tomasz Wierzba², Priya Raman¹"], ("serif", 23), 36, "c")
    y = block(c, A4[0] / 2, y, ["¹Department of Applied Signal Studies, University of Eastmoor",
                                "²Institute for Imaginary Instruments, Lindholm",
                                "Correspondence: m.ellison@eastmoor.example.edu"], ("serif-i", 19), 27, "c")
    put(c, A4[0] / 2, y + 24, "Abstract", ("serif-b", 21), "c")
    y = paragraph(c, M + 45, y + 60, A4[0] - 2 * M - 90, ABSTRACT.replace("\n", " "), BODY, LEAD)
    put(c, M + 45, y + 8, "Keywords:", ("serif-b", 19))
    put(c, M + 160, y + 8, "sensor networks, spatial smoothing, air quality, edge computing", ("serif-i", 19))
    c.line([(M, y + 52), (A4[0] - M, y + 52)])
    return y + 76


class Flow:
    """Pours the paper's blocks into two columns, starting new pages as needed."""

    def __init__(self, c: Canvas, top: float) -> None:
        self.c, self.page, self.col, self.top, self.y, self.fresh = c, 1, 0, top, top, True

    def x(self) -> float:
        return M + self.col * (COLW + GAP)

    def need(self, h: float) -> None:
        """Move to the next column (or page) unless h more pixels fit in this one."""
        if self.y + h > BOTTOM:
            self.col += 1
            if self.col == 2:
                self.c.new_page()
                self.page, self.col, self.top = self.page + 1, 0, COL_TOP
                paper_chrome(self.c, self.page)
            self.y = self.top

    def heading(self, text: str) -> None:
        self.y += 12 if self.y > self.top else 0
        self.need(38 + 2 * LEAD)  # keep with the next two lines
        put(self.c, self.x(), self.y, text, ("serif-b", 23))
        self.y, self.fresh = self.y + 38, True

    def para(self, text: str, indent: bool = True, font: Font = BODY, lead: int = LEAD, align: str = "j") -> None:
        dx0 = 24 if indent and not self.fresh else 0
        lines = wrap(text, font, COLW, dx0)
        for i, words in enumerate(lines):
            self.need(lead)
            dx = dx0 if i == 0 else 0
            draw_line(self.c, self.x() + dx, self.y, words, font, COLW - dx, align, i == len(lines) - 1)
            self.y += lead
        self.fresh = False

    def equation(self, text: str, tag: str) -> None:
        self.need(64)
        formula(self.c, self.x() + COLW / 2 - 14, self.y + 16, text, ("serif", 22))
        put(self.c, self.x() + COLW, self.y + 18, tag, BODY, "r")
        self.y += 64

    def table(self, caption: str, cells: str) -> None:
        rows = [[cell.strip() for cell in r.split(",")] for r in cells.split(";")]
        self.need(24 * len(wrap(caption, ("serif", 19), COLW)) + 36 * len(rows) + 36)
        y = paragraph(self.c, self.x(), self.y + 8, COLW, caption, ("serif", 19), 24, "l")
        self.y = table(self.c, self.x() + 6, y + 6, [COLW - 342] + [110] * 3, rows,
                       (("serif", 19), ("serif-b", 19)), 36, "lrrr") + 22


def render_paper(c: Canvas) -> int:
    """Draw the whole paper on c; returns the number of pages."""
    paper_chrome(c, 1)
    flow = Flow(c, paper_title(c))
    for chunk in PAPER.split("\n\n"):
        text = chunk.replace("\n", " ")
        kind, rest = text[:2], text[2:]
        if kind in ("# ", "$ ", "% "):
            getattr(flow, {"# ": "heading", "$ ": "equation", "% ": "table"}[kind])(*rest.split(" | "))
        elif text.startswith("["):
            flow.para(text, False, ("serif", 18), 25, "l")
        else:
            flow.para(text.removeprefix("! "), indent=kind != "! ")
    return flow.page


def make_paper() -> None:
    png = PilCanvas(A4)
    assert render_paper(png) == 2, "the paper text should fill exactly two pages"
    save(png.pages[0], "paper_two_column.png", optimize=True)
    try:
        pdf = PdfCanvas(OUT / "paper_two_column.pdf", A4)
    except ImportError:
        print("reportlab is not installed: skipped paper_two_column.pdf (pip install reportlab)")
        return
    render_paper(pdf)
    pdf.c.save()
    report("paper_two_column.pdf")


ITEMS = [("A4 copy paper 80 g/m², box of 5 reams", 12, 24.50), ("Ballpoint pens, blue, pack of 50", 6, 8.90),
         ("Whiteboard markers, assorted, set of 8", 10, 6.75), ("Lever arch files A4, 75 mm", 40, 2.15),
         ("Sticky notes 76 × 76 mm, 12 pads", 15, 4.20), ("Laminating pouches A4, 100 pcs", 5, 11.60),
         ("Desk organiser, recycled plastic", 8, 9.95), ("Delivery and handling", 1, 12.00)]


def make_invoice() -> None:
    c, S, R = PilCanvas(A4), ("sans", 21), A4[0] - M
    put(c, M, 100, "Harbor & Pine Stationery Co.", ("sans-b", 36))
    block(c, M, 158, ["14 Quayside Lane, Unit 3", "Port Ellery, PE4 7QX, United Kingdom", "Tel. +44 20 7946 0321",
                      "accounts@harborpine.example", "VAT Reg. No. GB 902 4417 36"], ("sans", 19), 27, fill=GREY)
    put(c, R, 96, "INVOICE", ("sans-b", 52), "r")
    block(c, R - 210, 176, ["Invoice No.", "Invoice date", "Due date", "Customer ID", "PO number"],
          ("sans-b", 19), 30, "r")
    block(c, R, 176, ["INV-2024-0317", "18 March 2024", "17 April 2024", "C-10482", "LPS-7781"], ("sans", 19), 30, "r")
    c.line([(M, 350), (R, 350)], 2)
    for x, label, addr in [(M, "BILL TO", ["Attn: Ms Helen Carver, Bursar", "22 Orchard Road"]),
                           (M + 540, "SHIP TO", ["Goods entrance, Block C", "24 Orchard Road"])]:
        put(c, x, 378, label, ("sans-b", 18), fill=GREY)
        block(c, x, 412, ["Lindenbrook Primary School", *addr, "Millbury, MB2 9LT"], S, 31)
    rows: list[list[str]] = [["#", "Description", "Qty", "Unit price", "Amount"]]
    rows += [[str(i), d, str(q), f"£{p:,.2f}", f"£{q * p:,.2f}"] for i, (d, q, p) in enumerate(ITEMS, 1)]
    y = table(c, M, 570, [60, 520, 100, 160, 180], rows, (S, ("sans-b", 21)), 48, "clrrr", (228, 232, 238))
    subtotal = sum(q * p for _, q, p in ITEMS)
    vat = round(subtotal * 0.2, 2)
    block(c, R - 200, y + 24, ["Subtotal", "VAT 20%"], S, 36, "r")
    block(c, R - 10, y + 24, [f"£{subtotal:,.2f}", f"£{vat:,.2f}"], S, 36, "r")
    c.line([(R - 420, y + 104), (R, y + 104)], 2)
    put(c, R - 200, y + 120, "Total due (GBP)", ("sans-b", 25), "r")
    put(c, R - 10, y + 120, f"£{subtotal + vat:,.2f}", ("sans-b", 25), "r")
    paragraph(c, M, y + 200, 620, "Notes: goods delivered on 15 March 2024 under delivery note DN-8842. Please "
              "contact us within 7 days if any item is missing or damaged.", ("sans", 19), 27, "l")
    c.line([(M, A4[1] - 210), (R, A4[1] - 210)])
    block(c, A4[0] / 2, A4[1] - 188, [
        "Payment terms: net 30 days. Please quote the invoice number with your payment.",
        "Bank transfer to Eastmoor Co-operative Bank, sort code 00-11-22, account 12345678",
        "IBAN GB00 EAST 0011 2212 3456 78  ·  BIC EASTGB00",
        "Late payments may incur interest at 8% above the base rate. Thank you for your business!"],
        ("sans", 18), 28, "c", GREY)
    save(c.pages[0], "invoice.png", optimize=True)


LETTER = """Благодарим Вас за интерес к продукции нашей компании и за запрос от 4\xa0марта 2024 года. Сообщаем, что ООО
«Северный ветер» готово поставить в адрес Вашего предприятия партию измерительного оборудования в соответствии с
приложенной спецификацией: двенадцать цифровых анемометров серии СВ-200 и четыре автоматические метеостанции
«Бриз-М» с комплектом монтажных креплений.

Общая стоимость поставки составляет 1\xa0284\xa0600 (один миллион двести восемьдесят четыре тысячи шестьсот) рублей,
включая НДС 20\xa0%. Срок изготовления — 25 рабочих дней с момента поступления предоплаты в размере 50\xa0% от
стоимости заказа. Доставка до склада покупателя осуществляется за наш счёт, пусконаладочные работы выполняются нашими
специалистами без дополнительной оплаты.

Настоящее предложение действительно до 30\xa0апреля 2024 года. Будем рады ответить на Ваши вопросы и при
необходимости подготовить проект договора. Контактное лицо по техническим вопросам — ведущий инженер Орлова Елена
Николаевна, тел. +7\xa0(812)\xa0555-01-52, e-mail: orlova@severveter.example."""


def make_letter() -> None:
    c, F, R = PilCanvas(A4), ("serif", 23), A4[0] - M
    put(c, M, 96, "ООО «Северный ветер»", ("serif-b", 34))
    block(c, M, 148, ["196084, г. Санкт-Петербург, ул. Полевая, д. 17, оф. 204",
                      "Тел.: +7 (812) 555-01-47  ·  info@severveter.example  ·  ИНН 7801234567 / КПП 780101001"],
          ("serif", 18), 26, fill=GREY)
    c.line([(M, 214), (R, 214)], 3)
    c.line([(M, 221), (R, 221)])
    block(c, M, 262, ["Исх. № 214/03 от 15.03.2024", "На № 57 от 04.03.2024"], F, 34)
    block(c, 720, 262, ["Генеральному директору", "АО «Ладожские мастерские»", "П. С. Кузнецову",
                        "191123, г. Санкт-Петербург,", "ул. Садовая, д. 5"], F, 34)
    put(c, M, 470, "О поставке измерительного оборудования", ("serif-i", 23))
    put(c, A4[0] / 2, 550, "Уважаемый Павел Сергеевич!", ("serif-b", 24), "c")
    y: float = 610
    for text in LETTER.split("\n\n"):
        y = paragraph(c, M, y, R - M, text.replace("\n", " "), F, 36, "j", indent=60) + 8
    put(c, M, y + 20, "Приложение: спецификация на 2 л. в 1 экз.", F)
    put(c, M, y + 100, "С уважением,", F)
    put(c, M, y + 150, "Генеральный директор", F)
    put(c, R, y + 150, "А. В. Смирнова", F, "r")
    sig = [(640 + 8 * t - 16 * math.sin(t), y + 150 - (24 if t < 7 else 13) * math.cos(t) - t)
           for t in (i / 8 for i in range(175))]  # a looping hand-written flourish
    c.line(sig + [(sig[-1][0] - 9 * k, sig[-1][1] + 2 * k - 0.06 * k * k) for k in range(1, 24)], 3, (28, 48, 140))
    block(c, M, A4[1] - 150, ["Исп.: Е. Н. Орлова", "+7 (812) 555-01-52"], ("serif", 17), 24, fill=GREY)
    save(c.pages[0], "letter_ru.png", optimize=True)


GROCERIES = [("WHOLE MILK 1L", 2, 1.19), ("SOURDOUGH LOAF", 1, 3.45), ("FREE RANGE EGGS X6", 1, 2.79),
             ("CHEDDAR MATURE 200G", 1, 2.99), ("APPLES GALA", 4, 0.65), ("ORANGE JUICE 1L", 1, 2.49),
             ("DARK CHOCOLATE 100G", 2, 1.85), ("BASMATI RICE 1KG", 1, 2.35), ("TOMATOES VINE 500G", 1, 1.89)]


def make_receipt() -> None:
    c, F, W, ink = PilCanvas((600, 1400), (236, 235, 231)), ("mono", 22), 600, (45, 45, 45)
    total = sum(q * p for _, q, p in GROCERIES)
    lines: list[tuple[str, str]] = [("-", ""), ("Receipt 004127", "Till 03"), ("Date 18.03.2024", "14:27"),
                                    ("Cashier: Dana", ""), ("-", "")]
    for name, qty, price in GROCERIES:
        lines += [(name, f"{qty * price:.2f}")] + ([(f"  {qty} x {price:.2f}", "")] if qty > 1 else [])
    lines += [("-", ""), ("SUBTOTAL", f"{total:.2f}"), ("TOTAL EUR", f"{total:.2f}"),
              ("CARD VISA ****4821", f"{total:.2f}"), ("CHANGE", "0.00"), ("VAT 7% INCLUDED", f"{total * 7 / 107:.2f}"),
              (f"ITEMS SOLD: {sum(q for _, q, _ in GROCERIES)}", ""), ("-", "")]
    put(c, W / 2, 60, "FRESH CORNER MARKET", ("mono-b", 32), "c", ink)
    y = block(c, W / 2, 112, ["128 Willow Street, Brookhaven", "Tel. 555-0142", "VAT No. DE 482 093 177"],
              F, 30, "c", ink) + 8
    for left, right in lines:
        font: Font = ("mono-b", 28) if left == "TOTAL EUR" else F
        put(c, 34, y, "-" * 40 if left == "-" else left, font, fill=ink)
        put(c, W - 34, y, right, font, "r", ink)
        y += 42 if font != F else 32
    y = block(c, W / 2, y + 10, ["THANK YOU FOR SHOPPING!", "Returns within 14 days", "with this receipt."],
              F, 30, "c", ink) + 26
    bits = "".join(format(ord(ch) * 37 % 251, "08b") for ch in "004127180324")
    x = (W - sum(4 if b == "1" else 3 for b in bits)) / 2
    for b in bits:  # a decorative barcode derived from the receipt number
        if b == "1":
            c.rect((x, y, x + 2, y + 90), ink)
        x += 4 if b == "1" else 3
    put(c, W / 2, y + 102, "0 0 4 1 2 7 1 8 0 3 2 4", ("mono", 18), "c", ink)
    save(c.pages[0], "receipt.jpg", quality=90)


def make_thumbnails() -> None:
    """thumbnails/<name>.png, 200 px wide, of each example (a PDF's first page) for the gallery."""
    import pypdfium2

    (OUT / "thumbnails").mkdir(exist_ok=True)
    for name in ("paper_two_column.pdf", "invoice.png", "receipt.jpg", "letter_ru.png"):
        if name.endswith(".pdf"):
            pdf = pypdfium2.PdfDocument(OUT / name)
            image = pdf[0].render(scale=200 / pdf[0].get_width()).to_pil()
            pdf.close()
        else:
            image = Image.open(OUT / name)
        image = image.convert("RGB")
        image.thumbnail((200, 10_000), Image.Resampling.LANCZOS)
        save(image, f"thumbnails/{Path(name).stem}.png", optimize=True)


if __name__ == "__main__":
    make_paper()
    make_invoice()
    make_letter()
    make_receipt()
    make_thumbnails()
