"""OCR accuracy and speed: the embedded CPU engine "classic" vs Tesseract on real PDF pages.

Ground truth is each page's text layer (pypdfium2); both engines read the same 200 dpi render.
The PDFs come from Debian packages (PAGES records package, path inside it, page and sha256);
they are fetched with apt-get into bench/.cache/ (gitignored), so nothing large is committed.

    apt-get update && apt-get install -y tesseract-ocr tesseract-ocr-eng   # once
    pip install -r bench/requirements.txt
    python bench/classic_vs_tesseract.py --fetch            # only download + verify the PDFs
    python bench/classic_vs_tesseract.py --repeat 3         # fetch if needed, run, write results
    python bench/classic_vs_tesseract.py --engines tesseract --pages-limit 2 --out /tmp/r

Writes OUT/classic_vs_tesseract.{json,md} and OUT/texts/ (ground truth and raw outputs per page).
"""
from __future__ import annotations

import argparse
import datetime
import gzip
import hashlib
import html
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import pypdfium2 as pdfium
from PIL import Image

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # the project's own measures and engines
from pipelines.text_metrics import character_error_rate  # noqa: E402
CACHE = BENCH / ".cache"
DPI = 200


@dataclass(frozen=True)
class Source:
    """One page of a PDF shipped in a Debian package; sha256 is of the (decompressed) PDF."""

    key: str
    package: str  # fetched with `apt-get download <package>`
    member: str  # path inside the .deb; a .gz suffix is decompressed
    page: int  # 1-based
    sha256: str
    cls: str = "prose"  # layout class, for results per class
    scanned: bool = False  # the render is made to look scanned (see scanned_look)

    @property
    def id(self) -> str:
        return f"{self.key}-p{self.page}" + ("-scan" if self.scanned else "")

    @property
    def pdf(self) -> Path:
        return CACHE / "pdf" / Path(self.member).name.removesuffix(".gz")


# Hashes from Debian 12 (bookworm); a newer package may change a PDF, which fetch() reports. Licences
# (from each package's copyright file): texlive-latex-base-doc 2022.20230122-3 (LPPL-1.3c),
# shared-mime-info 2.2-1 (GPL-2+), libtasn1-doc 4.19.0-2+deb12u1 (GFDL-1.3+), groff 1.22.4-10
# (GPL-3+, GFDL-1.3+, FSFAP), texlive-publishers-doc 2022.20230122-4 (LPPL-1.3/1.3c, BSD-3-Clause,
# CC-BY-4.0, per TeX Live package), texlive-latex-recommended-doc 2022.20230122-3 (LPPL-1.3c, MIT/
# CC0 alternatives), texlive-humanities-doc 2022.20230122-4 (LPPL-1.2/1.3), texlive-pictures-doc
# 2022.20230122-3 (LPPL-1.3c or GPL-2), debian-refcard 12.0 (GPL-3+), octave-doc 7.3.0-2 (GPL-3+),
# r-doc-pdf 4.2.2.20221110-2 (GPL-2+; the manuals' verbatim-copying notice), gnuplot-doc
# 5.4.4+dfsg1-2 (gnuplot licence), maxima-doc 5.46.0-11 (GPL-2).
TL, DOC = "texlive-latex-base-doc", "./usr/share/doc/"
TLB = DOC + "texlive-doc/latex/base/"
# The first seven pages were looked at while classic was built; the rest were chosen by layout
# class afterwards (a wider set: 35 pages of 34 PDFs), plus three made to look scanned.
PAGES: list[Source] = [
    Source("ltnews22", TL, TLB + "ltnews22.pdf", 1,  # 2 columns, masthead, code, footnote
           "d47528fa16e68f37d7401be8d61f69cce6a984b235aec3460b15340c6667a761", "two-column"),
    Source("ltnews30", TL, TLB + "ltnews30.pdf", 2,  # 2 columns of prose
           "5f544be765d70e43be62fca478c9c2765e93585025d6b70e5026d61254406a9e", "two-column"),
    Source("lppl", TL, TLB + "lppl.pdf", 2,  # 1 column of legal prose
           "5836a11253ba59b79c0b52cf010c0d280eaa6bda709f8d6824f2a3924207fef6"),
    Source("psnfss2e", TL, DOC + "texlive-doc/latex/psnfss/psnfss2e.pdf", 3,  # ruled table + prose
           "becbe6aba7d92a70c0f0be81945bbe25a04814c988dec8408ec9ed5082d9f9f5", "ruled-table"),
    Source("mime-spec", "shared-mime-info", DOC + "shared-mime-info/shared-mime-info-spec.pdf", 1,
           "4d9666c46b4d367a12e2922f4f3b114396c377106c57bbc934d03320e6888002"),  # centred title block
    Source("libtasn1", "libtasn1-doc", DOC + "libtasn1-doc/libtasn1.pdf", 4,  # Texinfo, bullet list
           "3917eb460d87e275f9792b3597029873fd77890ed3ccebe40bbc5a3a7ee516d3", "option-list"),
    Source("mom-pdf", "groff", DOC + "groff-base/examples/mom/mom-pdf.pdf.gz", 3,  # centred title, code
           "a2df7a188ca99aac93b4b910ea253a348a4b3aebdd2f7b1e0f582953cd14ad77", "code-box"),
    Source("tugboat-guide", "texlive-publishers-doc", "./usr/share/doc/texlive-doc/latex/tugboat/ltubguid.pdf", 2,
           "a58929d1b588ffb9b574398b760e7d77bcd90bcfad3553ac45335aadcf7441bc", "two-column"),  # TUGboat author guide: two-column body text with inline LaTeX code snip
    Source("revtex-apssamp", "texlive-publishers-doc", "./usr/share/doc/texlive-doc/latex/revtex4-1/sample/aps/apssamp.pdf", 2,
           "37fba24e612ca36f0cce7b0761182d4770b7db0a8d7fc68fe4b8164846183f2f", "two-column"),  # REVTeX 4.1 APS sample paper: two-column physics-journal layout on cita
    Source("acmart-sigconf", "texlive-publishers-doc", "./usr/share/doc/texlive-doc/latex/acmart/samples/sample-sigconf.pdf", 3,
           "a4b9040fb79f559ac91656a75645e724fd601899b4a10fbef5fd06aa4c68867f", "two-column"),  # ACM sigconf sample paper: two columns, small booktabs table, display e
    Source("mom-sample-docs", "groff", "./usr/share/doc/groff-base/examples/mom/sample_docs.pdf.gz", 11,
           "b2857003143f8846606d7d29b1a31c3de6f1035012a022790d15cd55ecbd3181", "two-column"),  # groff mom sample: two-column greeked (lorem ipsum) article with block 
    Source("debian-refcard-en", "debian-refcard", "./usr/share/doc/debian-refcard/refcard-en-a4.pdf.gz", 2,
           "e876ef5e889cc82835b96a1b32df6a295e41534a1adae69def6d4ad981e38f61", "multi-column"),  # Debian reference card (English): three columns of small ruled command/
    Source("debian-refcard-de", "debian-refcard", "./usr/share/doc/debian-refcard/refcard-de-a4.pdf.gz", 1,
           "e788565be0b9db4d22eeb8fb5ee295f7eea869ec1f4d13fa5c42e21febc73971", "multi-column"),  # Debian Referenzkarte (German): three columns of command/description ta
    Source("octave-refcard-a4", "octave-doc", "./usr/share/doc/octave/refcard-a4.pdf", 2,
           "7de62b24c8aa8b82d37e91948cd411c0dae8678233603419de976f0bf9538706", "multi-column"),  # Octave quick reference (landscape A4): three dense columns of operator
    Source("r-refman-hist", "r-doc-pdf", "./usr/share/R/doc/manual/refman.pdf", 1009,
           "9ed9a074639c58686620757dc7475c683a41ae0412a91f3b58e92e936dc92284", "option-list"),  # R reference manual, hist(): Arguments list, argument name left, descri
    Source("r-intro-options", "r-doc-pdf", "./usr/share/R/doc/manual/R-intro.pdf", 99,
           "337ccd0b490b1e66f7e783b45f4588d0599730b4206c0c051edfe1419c568c51", "option-list"),  # An Introduction to R, Appendix B: R command-line options with hanging 
    Source("nih-biosketch", "texlive-publishers-doc", "./usr/share/doc/texlive-doc/latex/nihbiosketch/example-nihbiosketch.pdf", 1,
           "766a931b3405af22617f95f2827a87c5e5974191fc3cf82d36f03899d71bd139", "form"),  # NIH biographical sketch form: NAME/eRA COMMONS/POSITION TITLE fields, 
    Source("hgb-fragebogen", "texlive-publishers-doc", "./usr/share/doc/texlive-doc/latex/hagenberg-thesis/examples/HgbThesisTutorial/images/fragebogen.pdf", 2,
           "badaffd37d2711864b24c7a21eb0e49844c25a827d9222a6f9a2742a503455d8", "form"),  # German questionnaire (Fragebogen) page 2: checkbox grids, rating scale
    Source("latex-encguide", "texlive-latex-base-doc", "./usr/share/doc/texlive-doc/latex/base/encguide.pdf", 6,
           "92f1e287ee854e8dc38224814ac6c1e9375407ea0ac13760a1e5a3821fd0a2f1", "form"),  # LaTeX font encodings guide: key-value blocks (LaTeX name / Public name
    Source("gnuplot-operators", "gnuplot-doc", "./usr/share/doc/gnuplot/gnuplot.pdf", 42,
           "df68dd0613f043141512fc4436d17aaf96727d5a758d85233915ac5056a97206", "ruled-table"),  # gnuplot 5.4 manual: fully ruled Unary and Binary Operators tables with
    Source("theatre-help", "texlive-humanities-doc", "./usr/share/doc/texlive-doc/latex/theatre/doc/Help_Theatre.pdf", 10,
           "d007a3192e698c447d04837605f99b052002879027dcc9ba20f1919b09d9525b", "ruled-table"),  # French theatre package help: several ruled tables Nom/Type/Extension l
    Source("tlc-article", "texlive-publishers-doc", "./usr/share/doc/texlive-doc/latex/tlc-article/doc/tlc-article.pdf", 11,
           "aa544bf33dcd0467dfc1196d835dd267eb06caeef32bdc774ccea9f07c00347c", "ruled-table"),  # tlc-article doc: full-grid Name/Description table of LaTeX packages (s
    Source("polyglossia-welsh", "texlive-latex-recommended-doc", "./usr/share/doc/texlive-doc/latex/polyglossia/test-welsh.pdf", 2,
           "643f95f823071cd600883165aa01ccd46ea37683bf5efb713583e29d124feaac", "unruled-table"),  # polyglossia Welsh test: borderless three-column table of dates (Welsh 
    Source("latex-fntguide", "texlive-latex-base-doc", "./usr/share/doc/texlive-doc/latex/base/fntguide.pdf", 5,
           "fb1b5ecbdf1a1b39698896ac567c0525f65de2202107b504f5c0dc76e5e69be4", "unruled-table"),  # LaTeX font selection guide: borderless tables of encodings, families, 
    Source("nwejm-en-code", "texlive-publishers-doc", "./usr/share/doc/texlive-doc/latex/nwejm/english/nwejm-en.pdf", 10,
           "611d5faadb502175a16a828f3c970939db212bacba89fb415e23a2f482f37ccb", "code-box"),  # nwejm class documentation (English): framed LaTeX code boxes with sect
    Source("bath-bst", "texlive-publishers-doc", "./usr/share/doc/texlive-doc/bibtex/bath-bst/bath-bst.pdf", 3,
           "af699fbd6032e040b19e36ca5851ae9647f010047e457e634060a425a67716f5", "code-box"),  # bath-bst doc: framed preamble code boxes, framed code/output example, 
    Source("ksp-thesis", "texlive-publishers-doc", "./usr/share/doc/texlive-doc/latex/ksp-thesis/ksp-thesis.pdf", 5,
           "b7e2b2af5a674eb5f36191679331878678d271b3cfd28e57e05affca249882a3", "code-box"),  # ksp-thesis doc: command descriptions and a titled, shaded code box wit
    Source("pgfmanual-grid", "texlive-pictures-doc", "./usr/share/doc/texlive-doc/generic/pgf/pgfmanual.pdf", 35,
           "ac16c575526ff7038733ef7cbe86a0570b0ee9cc077af9d4ae468b7a6eaf0fc7", "side-by-side"),  # PGF/TikZ manual tutorial: rendered picture panel left, shaded TikZ cod
    Source("fancyvrb-frames", "texlive-latex-recommended-doc", "./usr/share/doc/texlive-doc/latex/fancyvrb/fancyvrb-doc.pdf", 8,
           "ae2935276ca7b2c5004de268dd9e574d2640972627807e3e6b02497e9bae2a18", "side-by-side"),  # fancyvrb doc: framed output boxes left, line-numbered framed source bo
    Source("pgf-pie", "texlive-pictures-doc", "./usr/share/doc/texlive-doc/latex/pgf-pie/pgf-pie-manual.pdf", 3,
           "f1381ba7de8afbffea1173382f61b9db6ac61e838c0b78b875b6b23fdbb01947", "side-by-side"),  # pgf-pie manual: pie charts (with labels) left, shaded code panels righ
    Source("reledmac-history", "texlive-humanities-doc", "./usr/share/doc/texlive-doc/latex/reledmac/reledmac.pdf", 13,
           "9f3568e7f986624a71d25c0b299839f7625a46d3b889640c542516607aff2764", "footnotes"),  # reledmac manual history section: prose with 11 bibliographic footnotes
    Source("footnotehyper", "texlive-latex-recommended-doc", "./usr/share/doc/texlive-doc/latex/footnotehyper/footnotehyper.pdf", 3,
           "55e31184b9ecedf4f64bcde2e3ebbb6a39637eb6bab05bdd5cb50c4d5f0b9ef3", "footnotes"),  # footnotehyper doc: prose with verbatim code and three long footnotes i
    Source("groff-pdfmark-intro", "groff", "./usr/share/doc/groff-base/pdf/pdfmark.pdf.gz", 3,
           "71321248980549345b78e5afa16798d0c266634984bc3130d62b07601ea36c60", "footnotes"),  # groff pdfmark guide introduction: prose, bullet list, five footnotes
    Source("beamer-conf-talk", "texlive-latex-recommended-doc", "./usr/share/doc/texlive-doc/latex/beamer/beamerexample-conference-talk.pdf", 6,
           "4b11425166212ed695a5c99506303bddd7cc1beb02b17da48565c48f51eb38d6", "slides"),  # beamer example conference talk: navigation bar, frame title, numbered/
    Source("mom-slide-demo", "groff", "./usr/share/doc/groff-base/examples/mom/slide-demo.pdf.gz", 6,
           "6837874806edb4660cc8b9e300284fa4a104507b810674799bc8b37c130ab0d6", "slides"),  # groff mom PDF slide (16:9): header, centred title, paragraph and bulle
    Source("urbeamer", "texlive-publishers-doc", "./usr/share/doc/texlive-doc/latex/urcls/URbeamer-DEMO.pdf", 3,
           "2db71ab61b456b73defee5e18fabd492e45f58b3fbf92acb284b22cc9baec6f7", "slides"),  # Uni Regensburg beamer demo (German): colour header bar, title, paragra
    Source("groff-pdfmark-body", "groff", "./usr/share/doc/groff-base/pdf/pdfmark.pdf.gz", 5,
           "71321248980549345b78e5afa16798d0c266634984bc3130d62b07601ea36c60", "prose"),  # groff pdfmark guide: single-column prose with indented code examples a
    Source("r-faq", "r-doc-pdf", "./usr/share/R/doc/manual/R-FAQ.pdf", 9,
           "de8768520d4fb90dad64c28483ffb92dca7dd9d8dc8556905b35c2e62a939255", "prose"),  # R FAQ section 2.5: single-column prose with short shell/code lines
    Source("tudscr-treatise", "texlive-publishers-doc", "./usr/share/doc/texlive-doc/latex/tudscr/tutorials/treatise.pdf", 6,
           "f164396efa2971b80a9fc5d9df2009813e2e3d3954b733f732fd2d564aaf076d", "prose"),  # TUD-Script tutorial (German): single-column prose on binding correctio
    Source("nwejm-fr", "texlive-publishers-doc", "./usr/share/doc/texlive-doc/latex/nwejm/french/nwejm-fr.pdf", 3,
           "5ec4be91e71d98a29bd1a363d18b5f8a7dc604616887fa744a9e9cbab7b79dfb", "prose"),  # nwejm class documentation (French): prose introduction with remark/war
    Source("maxima-book-keys", "maxima-doc", "./usr/share/doc/maxima-doc/maximabook-19-Sept-2004.pdf.gz", 13,
           "022b4e349977d8ac6493259215092644384b76209aa79f7c7ca70902eda9b6c2", "option-list"),  # Maxima book (2004) ch.2: Emacs maxima-mode key bindings, key left / de
    Source("memoir-intro", "texlive-latex-recommended-doc", "./usr/share/doc/texlive-doc/latex/memoir/memman.pdf", 26,
           "9ac1b662ce46a3a8eeb74386c76b440687564c02b9783b8f5d490af4b5729277", "prose"),  # memoir manual: prose, small-caps run-in heads, a footnote
]
# A flatbed scan's look (grey, tilted, blurred, noisy, JPEG) on three layouts; same ground truth.
PAGES += [replace(src, scanned=True, cls="scanned") for src in PAGES if src.key in ("lppl", "revtex-apssamp", "nih-biosketch")]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(pages: list[Source]) -> None:
    """Put each page's PDF into the cache: `apt-get download`, then one tar pass per .deb."""
    debs, tree = CACHE / "debs", CACHE / "extract"
    for d in (debs, tree, CACHE / "pdf"):
        d.mkdir(parents=True, exist_ok=True)
    missing: dict[str, set[str]] = {}
    for src in pages:
        if not src.pdf.exists():
            missing.setdefault(src.package, set()).add(src.member)
    for package, members in missing.items():
        if not list(debs.glob(f"{package}_*.deb")):
            subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        deb = sorted(debs.glob(f"{package}_*.deb"))[-1]
        tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(tree), *sorted(members)], input=tar.stdout, check=True)
    for src in pages:
        if not src.pdf.exists():
            data = (tree / src.member).read_bytes()
            src.pdf.write_bytes(gzip.decompress(data) if src.member.endswith(".gz") else data)
        if sha256(src.pdf) != src.sha256:
            print(f"WARNING: {src.pdf}: sha256 {sha256(src.pdf)} != recorded {src.sha256}", file=sys.stderr)


def truth_and_image(src: Source) -> tuple[str, Image.Image]:
    """The page's text layer (ground truth) and its render at DPI."""
    pdf = pdfium.PdfDocument(str(src.pdf))
    page = pdf[src.page - 1]
    text = page.get_textpage().get_text_range()
    image = page.render(scale=DPI / 72).to_pil().convert("RGB")
    pdf.close()
    return text, scanned_look(image, src.id) if src.scanned else image


def scanned_look(image: Image.Image, seed_text: str) -> Image.Image:
    """The page as a flatbed scan gives it: grey, tilted 0.7 degrees, blurred, noisy, JPEG q=60.
    Deterministic (seeded by the page id)."""
    import io

    import numpy as np
    from PIL import ImageFilter

    rng = np.random.default_rng(int(hashlib.sha256(seed_text.encode()).hexdigest()[:8], 16))
    grey = image.convert("L").rotate(0.7, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    grey = grey.filter(ImageFilter.GaussianBlur(0.8))
    noisy = np.asarray(grey, dtype=np.float32) * 0.92 + 10 + rng.normal(0, 9, (grey.height, grey.width))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=60)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


FOLD = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"',
                      "\u201e": '"', "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2022": " ",
                      "\u00b7": " ", "\u25e6": " ", "\u00a0": " "})
SOFT_HYPHENS = re.compile("[\u00ad\ufffe\x02]")  # how pdfium reports a hyphen inserted at a line break


def strip_markdown(md: str) -> str:
    """Reduce engine Markdown to its visible text (headings, emphasis, math, tables, links)."""
    md = re.sub(r"</?(table|thead|tbody|tr|td|th|br|p|div|span|b|i|em|strong|sup|sub|u)\b[^>]*>",
                " ", md, flags=re.I)
    md = re.sub(r"(?m)^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", " ", md)  # table rule row
    md = re.sub(r"(?m)^\s*\|.*$", lambda row: row.group(0).replace("|", " "), md)  # pipe-table row
    md = re.sub(r"(?m)^\s{0,3}#{1,6}\s+", "", md)
    md = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", md)
    md = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", md)
    md = md.replace("**", "").replace("__", "").replace("$$", "").replace("`", "")
    md = re.sub(r"(?<![\w\\])[*_](?=\S)(.+?)(?<=[^\s\\])[*_](?!\w)", r"\1", md)
    return html.unescape(re.sub(r"\\([\\`*_{}\[\]()#+\-.!|$])", r"\1", md))


def normalise(text: str, markdown: bool = False) -> str:
    """NFKC, quotes/dashes folded, line-break hyphens joined, bullets dropped; whitespace kept."""
    text = unicodedata.normalize("NFKC", text)
    if markdown:
        text = strip_markdown(text)
    text = SOFT_HYPHENS.sub("-\n", text).translate(FOLD)
    text = re.sub(r"-[ \t]*\r?\n\s*|(?<=[a-z])- +(?=[a-z])", "", text)  # line-break hyphens, however joined
    return re.sub(r"(?m)^\s*[-*]\s+", "", text)  # list bullets


def cer(ref: str, hyp: str) -> float:
    return character_error_rate(ref, hyp)


def bow_f1(ref: str, hyp: str) -> float:
    """Bag-of-words F1: insensitive to reading order, sensitive to recognition."""
    r, h = Counter(re.findall(r"\w+", ref)), Counter(re.findall(r"\w+", hyp))
    common = sum((r & h).values())
    if not common:
        return 0.0
    precision, recall = common / sum(h.values()), common / sum(r.values())
    return 2 * precision * recall / (precision + recall)


Timed = tuple[str, float, float]  # text, wall seconds, CPU seconds (all threads)


def run_tesseract(image_png: Path) -> Timed:
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    c0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    out = subprocess.run(["tesseract", str(image_png), "-", "-l", "eng"], env=env,
                         capture_output=True, text=True, check=True).stdout
    wall, c1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    return out, wall, (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)


def load_classic(warmup: Image.Image, stats: dict[str, Any]) -> Callable[[Image.Image], Timed]:
    """Load the pipeline and run one warm-up parse (both timed into stats); return a timed parser."""
    from pipelines import load_pipeline

    t0 = time.perf_counter()
    pipe = load_pipeline("classic")
    t1 = time.perf_counter()
    pipe.parse_document(warmup, mode="layout_all")
    stats.update(load_s=t1 - t0, first_call_s=time.perf_counter() - t1)

    def parse(image: Image.Image) -> Timed:
        c, t = time.process_time(), time.perf_counter()
        doc = pipe.parse_document(image, mode="layout_all")
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        return "\n\n".join(p.markdown for p in doc.pages), wall, cpu

    return parse


def machine() -> dict[str, Any]:
    """The machine and versions, taken before the run (project_rev: the engine code measured)."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    tess = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout
    rev = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=BENCH, capture_output=True,
                         text=True).stdout.strip()
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": model.group(1) if model else platform.processor(),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "python": platform.python_version(), "tesseract": (tess.splitlines() or ["?"])[0],
            "pypdfium2": metadata.version("pypdfium2"), "dpi": DPI, "project_rev": rev or "?"}


def mean(values: list[float | None]) -> float | None:
    return statistics.fmean(vals) if (vals := [v for v in values if v is not None]) else None


def fmt(v: float | None, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec)


PAGE_COLS = (("cer", ".3f"), ("bow_f1", ".3f"), ("s", ".2f"))


def write_markdown(path: Path, report: dict[str, Any]) -> None:
    engines, m = list(report["engines"]), report["machine"]
    head = ["page", "class", "px", "chars"] + [f"{k} {e}" for e in engines for k in ("CER", "BoW-F1", "s")]
    lines = ["# classic vs Tesseract: OCR on real PDF pages", "",
             f"Ground truth: PDF text layer; render {DPI} dpi; CER on whitespace-free NFKC text.", "",
             "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for p in report["pages"]:
        cells = [p["id"], p.get("cls", ""), f"{p['width']}x{p['height']}", str(p["ref_chars"])]
        cells += [fmt(p.get(f"{k}_{e}"), f) for e in engines for k, f in PAGE_COLS]
        lines.append("| " + " | ".join(cells) + " |")
    cols = (("mean_cer", ".3f"), ("mean_bow_f1", ".3f"), ("mean_s", ".2f"), ("mean_cpu_s", ".2f"),
            ("load_s", ".2f"), ("first_call_s", ".2f"))
    lines += ["", "| engine | mean CER | mean BoW-F1 | mean s/page | mean CPU s/page | load s | 1st call s |",
              "|---" * 7 + "|"]
    lines += [f"| {e} | " + " | ".join(fmt(st.get(k), f) for k, f in cols) + " |"
              for e, st in report["engines"].items()]
    if report.get("by_class"):
        lines += ["", "Per layout class (mean CER / mean s a page):", "",
                  "| class | pages | " + " | ".join(f"CER {e} | s {e}" for e in engines) + " |",
                  "|---|---|" + "---|---|" * len(engines)]
        for cls, st in report["by_class"].items():
            lines.append(f"| {cls} | {st['pages']} | " + " | ".join(
                f"{fmt(st[f'mean_cer_{e}'])} | {fmt(st[f'mean_s_{e}'], '.2f')}" for e in engines) + " |")
    if vs := report.get("classic_vs_tesseract"):
        worse = ", ".join(vs["worse_than_2x_tesseract"]) or "none"
        lines += ["", f"classic's CER is at most Tesseract's (within 0.002) on {vs['classic_better_or_tied']} of "
                  f"{vs['pages']} pages; mean CER ratio classic/Tesseract {fmt(vs['cer_ratio_of_means'], '.2f')}; "
                  f"pages worse than 2x Tesseract's CER (and by more than 0.005): {worse}."]
    lines += ["", f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['date']}, {m['tesseract']}, "
              f"pypdfium2 {m['pypdfium2']}, Python {m['python']}, project {m['project_rev']}; "
              f"load average at end {m['loadavg_at_end']}; times are the best of {m['repeat']} run(s) "
              "per page (Tesseract with OMP_THREAD_LIMIT=1, classic with its own threading defaults).", ""]
    path.write_text("\n".join(lines))


def by_class(rows: list[dict[str, Any]], engines: list[str]) -> dict[str, dict[str, Any]]:
    """Mean CER and seconds a page per layout class and engine."""
    classes: dict[str, dict[str, Any]] = {}
    for cls in sorted({r["cls"] for r in rows}):
        members = [r for r in rows if r["cls"] == cls]
        classes[cls] = {"pages": len(members)} | {
            f"mean_{metric}_{e}": mean([r.get(f"{metric}_{e}") for r in members]) for e in engines for metric in ("cer", "s")}
    return classes


def versus(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How classic fares against Tesseract page by page (CER within 0.002 counts as a tie)."""
    pairs = [(r["id"], r["cer_classic"], r["cer_tesseract"]) for r in rows
             if r.get("cer_classic") is not None and r.get("cer_tesseract") is not None]
    return {
        "pages": len(pairs),
        "classic_better_or_tied": sum(c <= t + 0.002 for _, c, t in pairs),
        "worse_than_2x_tesseract": [i for i, c, t in pairs if c > 2 * t and c - t > 0.005],
        "cer_ratio_of_means": (statistics.fmean(c for _, c, _ in pairs) / statistics.fmean(t for _, _, t in pairs))
        if pairs and any(t for _, _, t in pairs) else None,
    }


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fetch", action="store_true", help="only download/verify the PDFs, then exit")
    ap.add_argument("--pages-limit", type=int, default=None, help="use only the first N pages")
    ap.add_argument("--out", type=Path, default=BENCH / "results", help="output directory")
    ap.add_argument("--engines", default="classic,tesseract", help="comma-separated subset")
    ap.add_argument("--repeat", type=int, default=1, help="runs per page; the fastest is reported")
    return ap.parse_args()


def make_runners(engines: list[str], warmup: Image.Image, stats: dict[str, dict[str, Any]]
                 ) -> dict[str, Callable[[Image.Image, Path], Timed]]:
    runners: dict[str, Callable[[Image.Image, Path], Timed]] = {}
    if "tesseract" in engines:
        runners["tesseract"] = lambda image, png: run_tesseract(png)
    if "classic" in engines:
        try:
            parse = load_classic(warmup, stats["classic"])
            runners["classic"] = lambda image, png: parse(image)
        except Exception as exc:  # e.g. the API is not there yet: still report Tesseract
            print(f"classic unavailable: {exc!r}", file=sys.stderr)
            stats["classic"]["error"] = repr(exc)
    return runners


def measure(src: Source, truth: str, image: Image.Image, png: Path,
            runners: dict[str, Callable[[Image.Image, Path], Timed]], texts: Path, repeat: int = 1
            ) -> dict[str, Any]:
    """Run every engine on one page (best of `repeat` timings); save raw texts; return the page's row."""
    row: dict[str, Any] = {"id": src.id, "cls": src.cls, "source": f"{src.package}:{src.member}",
                           "page": src.page, "sha256": src.sha256, "width": image.width,
                           "height": image.height}
    ref = normalise(truth)
    row["ref_chars"] = len(re.sub(r"\s+", "", ref))
    (texts / f"{row['id']}.truth.txt").write_text(truth)
    for name, run in runners.items():
        runs = [run(image, png) for _ in range(max(1, repeat))]
        out, wall, cpu = runs[0][0], min(r[1] for r in runs), min(r[2] for r in runs)
        (texts / f"{row['id']}.{name}.txt").write_text(out)
        hyp = normalise(out, markdown=name == "classic")
        row |= {f"cer_{name}": cer(ref, hyp), f"bow_f1_{name}": bow_f1(ref, hyp),
                f"s_{name}": wall, f"cpu_s_{name}": cpu}
    return row


def main() -> int:
    args = parse_args()
    pages = PAGES[: args.pages_limit] if args.pages_limit else PAGES
    fetch(pages)
    if args.fetch:
        print("\n".join(f"{s.key}: {s.pdf} sha256={sha256(s.pdf)}" for s in pages))
        return 0
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if unknown := set(engines) - {"classic", "tesseract"}:
        sys.exit(f"unknown engines: {sorted(unknown)}")
    info = machine() | {"repeat": args.repeat}
    texts, renders = args.out / "texts", CACHE / "render"
    texts.mkdir(parents=True, exist_ok=True)
    renders.mkdir(parents=True, exist_ok=True)
    stats: dict[str, dict[str, Any]] = {e: {} for e in engines}
    runners = make_runners(engines, truth_and_image(pages[0])[1], stats)
    rows = []
    for src in pages:
        truth, image = truth_and_image(src)
        png = renders / f"{src.id}.png"
        image.save(png)
        rows.append(measure(src, truth, image, png, runners, texts, args.repeat))
        print(json.dumps(rows[-1]), flush=True)
    for e in engines:
        for metric in ("cer", "bow_f1", "s", "cpu_s"):
            stats[e][f"mean_{metric}"] = mean([r.get(f"{metric}_{e}") for r in rows])
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]  # above nproc: timings contended
    report = {"machine": info, "engines": stats, "by_class": by_class(rows, engines), "pages": rows}
    if {"classic", "tesseract"} <= set(engines):
        report["classic_vs_tesseract"] = versus(rows)
    (args.out / "classic_vs_tesseract.json").write_text(json.dumps(report, indent=2))
    write_markdown(args.out / "classic_vs_tesseract.md", report)
    print((args.out / "classic_vs_tesseract.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
