"""OCR accuracy and speed: the embedded CPU engine "classic" vs Tesseract on real PDF pages.

Ground truth is each page's text layer (pypdfium2); both engines read the same 200 dpi render.
The PDFs come from Debian packages (see PAGES) and are fetched into bench/.cache/ (gitignored).

    apt-get update && apt-get install -y tesseract-ocr tesseract-ocr-eng   # once
    pip install -r bench/requirements.txt
    python bench/classic_vs_tesseract.py --fetch            # only download + verify the PDFs
    python bench/classic_vs_tesseract.py                    # fetch if needed, run, write results
    python bench/classic_vs_tesseract.py --engines tesseract --pages-limit 2 --out /tmp/r

Writes OUT/classic_vs_tesseract.{json,md} and OUT/texts/ (ground truth and raw outputs per page).
"""
from __future__ import annotations

import argparse
import datetime
import gzip
import hashlib
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import pypdfium2 as pdfium
from PIL import Image
from rapidfuzz.distance import Levenshtein

BENCH = Path(__file__).resolve().parent
CACHE = BENCH / ".cache"
DPI = 200


@dataclass(frozen=True)
class Source:
    """One PDF inside a Debian package (Debian 12 'bookworm' versions noted for traceability)."""

    package: str  # apt-get download <package>
    member: str  # path inside the .deb; a .gz suffix is decompressed
    sha256: str  # of the (decompressed) PDF
    note: str  # version we pinned the hash on, licence, layout

    @property
    def name(self) -> str:
        return Path(self.member).name.removesuffix(".gz")


LATEX_DOC = "./usr/share/doc/texlive-doc/latex/"
SOURCES = {
    "ltnews22": Source("texlive-latex-base-doc", LATEX_DOC + "base/ltnews22.pdf",
                       "d47528fa16e68f37d7401be8d61f69cce6a984b235aec3460b15340c6667a761",
                       "2022.20230122-3; LPPL 1.3c; LaTeX News, two columns"),
    "ltnews30": Source("texlive-latex-base-doc", LATEX_DOC + "base/ltnews30.pdf", "5f544be765d70e43be62fca478c9c2765e93585025d6b70e5026d61254406a9e",
                       "2022.20230122-3; LPPL 1.3c; LaTeX News, two columns"),
    "lppl": Source("texlive-latex-base-doc", LATEX_DOC + "base/lppl.pdf", "5836a11253ba59b79c0b52cf010c0d280eaa6bda709f8d6824f2a3924207fef6",
                   "2022.20230122-3; LPPL 1.3c; licence text, one column"),
    "psnfss2e": Source("texlive-latex-base-doc", LATEX_DOC + "psnfss/psnfss2e.pdf", "becbe6aba7d92a70c0f0be81945bbe25a04814c988dec8408ec9ed5082d9f9f5",
                       "2022.20230122-3; LPPL 1.3c; ruled table + prose"),
    "mime-spec": Source("shared-mime-info", "./usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf",
                        "4d9666c46b4d367a12e2922f4f3b114396c377106c57bbc934d03320e6888002", "2.2-1; GPL-2+; DocBook spec, sans-serif"),
    "libtasn1": Source("libtasn1-doc", "./usr/share/doc/libtasn1-doc/libtasn1.pdf", "3917eb460d87e275f9792b3597029873fd77890ed3ccebe40bbc5a3a7ee516d3",
                       "4.19.0-2+deb12u1; GFDL-1.3+; Texinfo manual, bullet list"),
    "mom-pdf": Source("groff", "./usr/share/doc/groff-base/examples/mom/mom-pdf.pdf.gz", "a2df7a188ca99aac93b4b910ea253a348a4b3aebdd2f7b1e0f582953cd14ad77",
                      "1.22.4-10; GPL-3+; groff/mom article with code lines"),
}
# (source key, 1-based page number)
PAGES: list[tuple[str, int]] = [
    ("ltnews22", 1), ("ltnews30", 2), ("lppl", 2), ("psnfss2e", 3),
    ("mime-spec", 1), ("libtasn1", 4), ("mom-pdf", 3),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(keys: list[str]) -> dict[str, Path]:
    """Cached PDFs by key; missing ones come from `apt-get download` + one tar pass per .deb."""
    out = {k: CACHE / "pdf" / SOURCES[k].name for k in keys}
    missing: dict[str, list[str]] = {}
    for k in keys:
        if not out[k].exists():
            missing.setdefault(SOURCES[k].package, []).append(k)
    debs = CACHE / "debs"
    for package, pkg_keys in missing.items():
        debs.mkdir(parents=True, exist_ok=True)
        if not list(debs.glob(f"{package}_*.deb")):
            subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        deb = sorted(debs.glob(f"{package}_*.deb"))[-1]
        tree = CACHE / "extract"
        tree.mkdir(parents=True, exist_ok=True)
        members = [SOURCES[k].member for k in pkg_keys]
        tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(tree), *members], input=tar.stdout, check=True)
        for k in pkg_keys:
            data = (tree / SOURCES[k].member).read_bytes()
            out[k].parent.mkdir(parents=True, exist_ok=True)
            out[k].write_bytes(gzip.decompress(data) if SOURCES[k].member.endswith(".gz") else data)
    for k, path in out.items():
        if sha256(path) != SOURCES[k].sha256:
            print(f"WARNING: {path} sha256 {sha256(path)} != recorded {SOURCES[k].sha256}", file=sys.stderr)
    return out


def page_truth_and_image(pdf_path: Path, page_no: int) -> tuple[str, Image.Image]:
    pdf = pdfium.PdfDocument(str(pdf_path))
    page = pdf[page_no - 1]
    text = page.get_textpage().get_text_range()
    image = page.render(scale=DPI / 72).to_pil().convert("RGB")
    pdf.close()
    return text, image


# ---------------------------------------------------------------- normalisation and metrics
FOLD = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"',
                      "\u201e": '"', "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2022": " ",
                      "\u00b7": " ", "\u25e6": " ", "\u00a0": " "})
SOFT_HYPHENS = re.compile("[\u00ad\ufffe\x02]")  # how pdfium reports a hyphen inserted at a line break


def strip_markdown(md: str) -> str:
    """Reduce engine Markdown to its visible text (headings, emphasis, math, tables, links)."""
    md = re.sub(r"</?(table|thead|tbody|tr|td|th|br)\b[^>]*>", " ", md, flags=re.I)
    md = re.sub(r"<[^>]+>", " ", md)
    md = re.sub(r"(?m)^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", " ", md)  # table rule row
    md = re.sub(r"(?m)^\s*\||\|\s*$", " ", md)
    md = re.sub(r"(?m)^\s{0,3}#{1,6}\s+", "", md)
    md = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", md)
    md = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", md)
    md = md.replace("**", "").replace("__", "").replace("$$", "").replace("`", "")
    md = re.sub(r"(?<!\w)[*_](?=\S)(.+?)(?<=\S)[*_](?!\w)", r"\1", md)
    return re.sub(r"\\([\\`*_{}\[\]()#+\-.!|$])", r"\1", md)


def normalise(text: str, markdown: bool = False) -> str:
    """NFKC, typographic folding, hyphenated line breaks joined; whitespace kept (see squeeze)."""
    text = unicodedata.normalize("NFKC", text)
    if markdown:
        text = strip_markdown(text)
    text = SOFT_HYPHENS.sub("-\n", text).translate(FOLD)
    text = re.sub(r"-[ \t]*\r?\n\s*|(?<=[a-z])- +(?=[a-z])", "", text)  # line-break hyphens, however joined
    return re.sub(r"(?m)^\s*[-*]\s+", "", text)  # list bullets


def cer(ref: str, hyp: str) -> float:
    ref, hyp = re.sub(r"\s+", "", ref), re.sub(r"\s+", "", hyp)
    return Levenshtein.distance(ref, hyp) / max(1, len(ref))


def bow_f1(ref: str, hyp: str) -> float:
    """Bag-of-words F1: insensitive to reading order, sensitive to recognition."""
    r, h = Counter(re.findall(r"\w+", ref)), Counter(re.findall(r"\w+", hyp))
    common = sum((r & h).values())
    if not common:
        return 0.0
    precision, recall = common / sum(h.values()), common / sum(r.values())
    return 2 * precision * recall / (precision + recall)


# ---------------------------------------------------------------- engines
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
    sys.path.insert(0, str(BENCH.parent))
    from pipelines import load_pipeline

    t0 = time.perf_counter()
    pipe = load_pipeline("classic")
    t1 = time.perf_counter()
    pipe.parse_document(warmup, mode="text_only")
    stats.update(load_s=t1 - t0, first_call_s=time.perf_counter() - t1)

    def parse(image: Image.Image) -> Timed:
        c, t = time.process_time(), time.perf_counter()
        doc = pipe.parse_document(image, mode="text_only")
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        return "\n\n".join(p.markdown for p in doc.pages), wall, cpu

    return parse


# ---------------------------------------------------------------- reporting
def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    tess = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": model.group(1) if model else platform.processor(),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "python": platform.python_version(), "tesseract": (tess.splitlines() or ["?"])[0],
            "pypdfium2": metadata.version("pypdfium2"), "dpi": DPI}


def mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def fmt(v: float | None, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec)


def write_markdown(path: Path, report: dict[str, Any]) -> None:
    engines = list(report["engines"])
    head = ["page", "px", "chars"] + [f"{k} {e}" for e in engines for k in ("CER", "BoW-F1", "s")]
    lines = ["# classic vs Tesseract: OCR on real PDF pages", "",
             f"Ground truth: PDF text layer; render {DPI} dpi; CER on whitespace-free NFKC text.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in report["pages"]:
        cells = [p["id"], f"{p['width']}x{p['height']}", str(p["ref_chars"])]
        for e in engines:
            cells += [fmt(p.get(f"cer_{e}")), fmt(p.get(f"bow_f1_{e}")), fmt(p.get(f"s_{e}"), ".2f")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| engine | mean CER | mean BoW-F1 | mean s/page | mean CPU s/page | load s | 1st call s |",
              "|---|---|---|---|---|---|---|"]
    for e, s in report["engines"].items():
        lines.append(f"| {e} | {fmt(s['mean_cer'])} | {fmt(s['mean_bow_f1'])} | "
                     f"{fmt(s['mean_s_per_page'], '.2f')} | {fmt(s['mean_cpu_s_per_page'], '.2f')} | "
                     f"{fmt(s.get('load_s'), '.2f')} | {fmt(s.get('first_call_s'), '.2f')} |")
    m = report["machine"]
    lines += ["", f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['date']}, {m['tesseract']}, "
              f"pypdfium2 {m['pypdfium2']}, Python {m['python']}.", ""]
    path.write_text("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fetch", action="store_true", help="only download/verify the PDFs, then exit")
    ap.add_argument("--pages-limit", type=int, default=None, help="use only the first N pages")
    ap.add_argument("--out", type=Path, default=BENCH / "results", help="output directory")
    ap.add_argument("--engines", default="classic,tesseract", help="comma-separated subset")
    args = ap.parse_args()

    pages = PAGES[: args.pages_limit] if args.pages_limit else PAGES
    pdfs = fetch(list(dict.fromkeys(k for k, _ in pages)))
    if args.fetch:
        for key, path in pdfs.items():
            print(f"{key}: {path} sha256={sha256(path)}")
        return 0

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    texts = args.out / "texts"
    texts.mkdir(parents=True, exist_ok=True)
    renders = CACHE / "render"
    renders.mkdir(parents=True, exist_ok=True)
    inputs = []
    for key, page_no in pages:
        truth, image = page_truth_and_image(pdfs[key], page_no)
        png = renders / f"{key}-p{page_no}.png"
        image.save(png)
        inputs.append((key, page_no, truth, image, png))

    stats: dict[str, dict[str, Any]] = {e: {} for e in engines}
    runners: dict[str, Callable[..., Timed]] = {"tesseract": lambda im, png: run_tesseract(png)}
    if "classic" in engines:
        try:
            parse = load_classic(inputs[0][3], stats["classic"])
            runners["classic"] = lambda im, png: parse(im)
        except Exception as exc:  # the API may not exist yet: still report Tesseract
            print(f"classic unavailable: {exc!r}", file=sys.stderr)
            stats["classic"]["error"] = repr(exc)

    rows = []
    for key, page_no, truth, image, png in inputs:
        src = SOURCES[key]
        row: dict[str, Any] = {"id": f"{key}-p{page_no}", "source": f"{src.package}:{src.member}",
                               "page": page_no, "sha256": sha256(pdfs[key]), "width": image.width,
                               "height": image.height}
        ref = normalise(truth)
        row["ref_chars"] = len(re.sub(r"\s+", "", ref))
        (texts / f"{row['id']}.truth.txt").write_text(truth)
        for e in engines:
            if e not in runners:
                continue
            out, secs, cpu = runners[e](image, png)
            (texts / f"{row['id']}.{e}.txt").write_text(out)
            hyp = normalise(out, markdown=(e == "classic"))
            row.update({f"cer_{e}": cer(ref, hyp), f"bow_f1_{e}": bow_f1(ref, hyp), f"s_{e}": secs, f"cpu_s_{e}": cpu})
        print(json.dumps(row), flush=True)
        rows.append(row)

    for e in engines:
        for metric, name in (("cer", "mean_cer"), ("bow_f1", "mean_bow_f1"), ("s", "mean_s_per_page"),
                             ("cpu_s", "mean_cpu_s_per_page")):
            stats[e][name] = mean([r.get(f"{metric}_{e}") for r in rows])
    report = {"machine": machine(), "engines": stats, "pages": rows}
    (args.out / "classic_vs_tesseract.json").write_text(json.dumps(report, indent=2))
    write_markdown(args.out / "classic_vs_tesseract.md", report)
    print((args.out / "classic_vs_tesseract.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
