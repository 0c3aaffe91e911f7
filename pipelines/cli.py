"""Command line: parse files in batch, with any backend, resumable.

    python -m pipelines parse FILES... --out DIR [--model dots_ocr] [--backend openai]
        [--base-url URL [--base-url URL2]] [--mode MODE] [--concurrency N] [--dpi 200] [--pages 1-3]
    python -m pipelines models

For each file, DIR/<file name without extension>/ gets, per page, page_NNN.json (the PageResult),
page_NNN.md (Markdown; pictures cropped into images/) and page_NNN.png (the page with its boxes),
then document.md and document.json for all its pages. A page counts as done when its JSON is
written (last, atomically) for the same model and mode: running the same command again skips it,
so an interrupted or partly failed batch resumes where it stopped. Failed pages are not written.
Exit status: 0 all pages done, 1 some page or file failed, 2 the command itself cannot run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from .catalogue import get_spec, list_models
from .documents import DEFAULT_DPI, PDFIUM_LOCK, Limits, Page, load_document, parse_page_selection, sniff_kind
from .engines import BACKENDS, ParseOptions, resolve_backend
from .errors import EngineCapabilityError, PipelineError
from .pipeline import FAILED_PAGE, Pipeline, load_pipeline
from .render.draw import draw_elements
from .render.markdown import page_markdown, picture_filename
from .schema import DocumentResult, PageResult

# The CLI reads files from disk, not uploads: no upload-size or page-count guard (memory is bounded
# by parsing a large PDF a few pages at a time); the per-page pixel guard stays.
CLI_LIMITS = Limits(max_bytes=1 << 40, max_pages=1_000_000)


@dataclass
class Job:
    """One input file: where its outputs go and which of its selected pages still need parsing."""

    path: Path
    directory: Path
    selected: list[int] = field(default_factory=list)  # 0-based page numbers
    todo: list[int] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # messages of failed pages or of the whole file


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines", description="ChatVLMLLM document parsing.")
    commands = parser.add_subparsers(dest="command", required=True)
    parse = commands.add_parser("parse", help="parse images and PDFs into JSON, Markdown and annotated PNGs")
    parse.add_argument("files", nargs="+", type=Path, help="images or PDFs")
    parse.add_argument("--out", type=Path, required=True, help="output folder (one sub-folder per file)")
    parse.add_argument("--model", default="classic", help="catalogue key (python -m pipelines models)")
    parse.add_argument("--backend", choices=BACKENDS,
                       help="classic (CPU OCR), transformers (local weights) or openai (servers); default: "
                       "the model's own, or openai when --base-url or CHATVLMLLM_OPENAI_<KEY>_BASE_URLS is set")
    parse.add_argument("--mode", help="prompt mode (default: the model's first)")
    parse.add_argument("--dpi", type=float, default=DEFAULT_DPI, help="PDF render resolution")
    parse.add_argument("--pages", help="page selection for every file, e.g. 1-3,7 or 5-")
    parse.add_argument("--language", help="classic: Tesseract languages for other scripts, e.g. rus+eng "
                                          "(needs Debian's tesseract-ocr-<code>)")
    parse.add_argument("--drop-headers-footers", action="store_true", help="leave page headers/footers out of the Markdown")
    parse.add_argument("--no-progress", action="store_true", help="no progress bar")
    vlm = parse.add_argument_group("vision-language models")
    vlm.add_argument("--max-new-tokens", type=int)
    vlm.add_argument("--min-pixels", type=int, help="pixel budget of the model's input (server: its processor's)")
    vlm.add_argument("--max-pixels", type=int)
    vlm.add_argument("--time-limit", type=float, help="seconds per page before generation stops")
    vlm.add_argument("--model-path", help="transformers backend: local weights folder")
    server = parse.add_argument_group("openai backend (vLLM, SGLang, transformers serve)")
    server.add_argument("--base-url", action="append", dest="base_urls",
                        help="server base URL, e.g. http://gpu1:8000/v1; repeat for several servers")
    server.add_argument("--served-model", help="model name on the server (default: the one it lists)")
    server.add_argument("--api-key", help="bearer token (default: CHATVLMLLM_OPENAI_API_KEY, else EMPTY)")
    server.add_argument("--concurrency", type=int, help="pages in flight across all servers (default 16)")
    server.add_argument("--timeout", type=float, dest="timeout_s", help="seconds without an answer before a request fails")
    server.add_argument("--max-retries", type=int, help="retries of a refused connection or 5xx (default 3)")
    commands.add_parser("models", help="list the catalogue's models and modes")
    evaluate = commands.add_parser("eval", help="score runs on documents with olmOCR-bench tests and/or page ground truth")
    evaluate.add_argument("--tests", type=Path, help="olmOCR-bench unit tests (JSONL)")
    evaluate.add_argument("--docs", type=Path, required=True,
                          help="the documents the tests name (PDFs or images), and any ground-truth .md/.txt beside them")
    evaluate.add_argument("--truth", type=Path, help="folder of ground-truth .md/.txt per page (default: --docs)")
    evaluate.add_argument("--runs", action="append", required=True, help="model:mode[:language], e.g. classic:layout_all or classic:layout_all:rus+eng (repeatable)")
    evaluate.add_argument("--out", type=Path, required=True, help="output folder: page Markdown per run, scores.json, scores.md")
    evaluate.add_argument("--dpi", type=float, default=DEFAULT_DPI, help="PDF render resolution")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "models":
        for spec in list_models():
            print(f"{spec.key:16} {spec.engine:12} {', '.join(spec.modes)}")
        return 0
    if args.command == "eval":
        return run_evaluation(args)
    try:
        backend = resolve_backend(get_spec(args.model), args.backend, {"base_urls": args.base_urls})
        pipeline = load_pipeline(args.model, backend, **_engine_options(args, backend))
        mode = pipeline.spec.check_mode(args.mode)
        stop = threading.Event()
        options = ParseOptions(min_pixels=args.min_pixels, max_pixels=args.max_pixels,
                               max_new_tokens=args.max_new_tokens, time_limit_s=args.time_limit, stop=stop,
                               language=args.language)  # checked here: a bad option is a usage error
        jobs = plan(args.files, args.out, args.pages, mode, pipeline.spec.key)
    except PipelineError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    return run(pipeline, mode, jobs, options, args)


def run_evaluation(args) -> int:
    from .evaluation import evaluate

    runs = [run for text in args.runs for run in text.split(",") if run.strip()]
    try:
        report = evaluate(runs, args.docs, args.out, args.tests, args.truth, dpi=args.dpi,
                          on_page=lambda run, name, page: print(f"{run}: {name} page {page}", file=sys.stderr))
    except PipelineError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    print((args.out / "scores.md").read_text(encoding="utf-8"))
    return 1 if any(r.get("failed_pages") for r in report["runs"]) else 0


SERVER_FLAGS = {"base_urls": "--base-url", "served_model": "--served-model", "api_key": "--api-key",
                "concurrency": "--concurrency", "timeout_s": "--timeout", "max_retries": "--max-retries"}
LOCAL_FLAGS = {"model_path": "--model-path"}


def _engine_options(args, backend: str) -> dict:
    """The engine options the flags give, refusing flags that do not apply to the backend."""
    own = SERVER_FLAGS if backend == "openai" else LOCAL_FLAGS if backend == "transformers" else {}
    stray = [flag for name, flag in {**SERVER_FLAGS, **LOCAL_FLAGS}.items()
             if name not in own and getattr(args, name) is not None]
    if stray:
        raise EngineCapabilityError(
            "bad_option", f"{', '.join(stray)} do(es) not apply to the {backend!r} backend.")
    return {name: getattr(args, name) for name in own if getattr(args, name) is not None}


def plan(files: list[Path], out: Path, selection: str | None, mode: str, model: str) -> list[Job]:
    """A job per file with its output folder and the selected pages not yet written."""
    jobs: list[Job] = []
    stems = [f.stem for f in files]
    for path in files:
        # Two inputs with one name (a.pdf, a.png) keep their outputs apart by extension.
        name = path.stem if stems.count(path.stem) == 1 else f"{path.stem}_{path.suffix.lstrip('.')}"
        job = Job(path, out / name)
        try:
            job.selected = parse_page_selection(selection, page_count(path))
        except PipelineError as error:
            job.failed.append(error.message)
        job.todo = [n for n in job.selected if not page_done(job.directory, n, model, mode)]
        jobs.append(job)
    return jobs


def page_count(path: Path) -> int:
    """Pages in a file, without rendering a PDF."""
    if not path.is_file():
        return load_document(path).page_count  # raises the not-found error
    with open(path, "rb") as handle:
        head = handle.read(1024)
    if head and sniff_kind(head) == "pdf":
        import pypdfium2 as pdfium

        with PDFIUM_LOCK:
            try:
                pdf = pdfium.PdfDocument(str(path))
            except pdfium.PdfiumError:
                pdf = None
            if pdf is not None:
                try:
                    return len(pdf)
                finally:
                    pdf.close()
        return load_document(path, limits=CLI_LIMITS).page_count  # its clear error
    return load_document(path, limits=CLI_LIMITS).page_count


def stem(number: int) -> str:
    return f"page_{number + 1:03d}"


def page_done(directory: Path, number: int, model: str, mode: str) -> bool:
    path = directory / f"{stem(number)}.json"
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return data.get("model") == model and data.get("mode") == mode


def write_page(directory: Path, result: PageResult, page: Page, drop_headers_footers: bool) -> None:
    """The page's annotated PNG, Markdown and pictures, then its JSON (which marks it done)."""
    directory.mkdir(parents=True, exist_ok=True)
    name = stem(result.page)
    _write(directory / f"{name}.png", lambda f: draw_elements(page.image, result.elements).save(f, "PNG"))
    for index, element in enumerate(result.elements):
        if element.category == "Picture":
            target = directory / picture_filename(result.page, index)
            target.parent.mkdir(exist_ok=True)
            _write(target, lambda f, box=element.bbox: page.image.crop(box).save(f, "PNG"))
    markdown = page_markdown(result, drop_headers_footers=drop_headers_footers)
    _write(directory / f"{name}.md", lambda f: f.write(markdown.encode("utf-8")))
    _write(directory / f"{name}.json",
           lambda f: f.write(json.dumps(result.to_dict(), ensure_ascii=False, indent=2).encode("utf-8")))


def write_document(job: Job, model: str, mode: str, parse_s: float) -> None:
    """document.md and document.json from every selected page written so far, in page order."""
    pages = []
    for number in job.selected:
        path = job.directory / f"{stem(number)}.json"
        if path.is_file():
            pages.append(PageResult.from_dict(json.loads(path.read_text("utf-8"))))
    if not pages:
        return
    markdown = "\n\n---\n\n".join((job.directory / f"{stem(p.page)}.md").read_text("utf-8") for p in pages)
    _write(job.directory / "document.md", lambda f: f.write(markdown.encode("utf-8")))
    document = DocumentResult(source=job.path.name, model=model, mode=mode, pages=pages,
                              timings={"parse_s": parse_s}, warnings=list(job.failed))
    _write(job.directory / "document.json", lambda f: f.write(document.to_json().encode("utf-8")))


def _write(path: Path, fill) -> None:
    """Write through a temporary file and rename: a file is either whole or absent."""
    temporary = path.with_name(f".{path.name}.part")
    with open(temporary, "wb") as handle:
        fill(handle)
    os.replace(temporary, path)


def run(pipeline: Pipeline, mode: str, jobs: list[Job], options: ParseOptions, args) -> int:
    from tqdm import tqdm

    stop = options.stop
    in_flight = pipeline.engine.max_in_flight
    # Enough pages per read to keep the server busy, few enough to bound memory on long PDFs.
    chunk = max(8, 2 * in_flight)
    skipped = sum(len(j.selected) - len(j.todo) for j in jobs)
    bar = tqdm(total=sum(len(j.todo) for j in jobs), unit="page", desc=f"{pipeline.spec.key} {mode}",
               disable=args.no_progress or not any(j.todo for j in jobs), file=sys.stderr)
    if skipped:
        bar.write(f"{skipped} page(s) already written: skipped", file=sys.stderr)
    lock = threading.Lock()

    def parse_job(job: Job) -> None:
        started = time.perf_counter()
        for start in range(0, len(job.todo), chunk):
            numbers = job.todo[start:start + chunk]
            document = load_document(job.path, dpi=args.dpi, pages=",".join(str(n + 1) for n in numbers),
                                     limits=CLI_LIMITS)
            by_number = {page.number: page for page in document.pages}

            def finished(result: PageResult) -> None:
                failure = next((w for w in result.warnings if w.startswith(FAILED_PAGE)), None)
                if failure:
                    job.failed.append(f"page {result.page + 1}: {failure[len(FAILED_PAGE):]}")
                else:
                    write_page(job.directory, result, by_number[result.page], args.drop_headers_footers)
                with lock:
                    bar.update(1)

            try:
                pipeline.parse_pages(document, mode, options, on_result=finished)
            except PipelineError as error:
                if not job.failed:  # failed before any page (each failed page is recorded above)
                    job.failed.append(error.message)
        write_document(job, pipeline.spec.key, mode, time.perf_counter() - started)

    pending = [j for j in jobs if j.todo]
    for job in jobs:
        if not job.todo and not job.failed:
            write_document(job, pipeline.spec.key, mode, 0.0)
    workers = max(1, min(len(pending), in_flight))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chatvlmllm-cli")
    futures = {pool.submit(parse_job, job): job for job in pending}
    try:
        for future in as_completed(futures):
            job = futures[future]
            try:
                future.result()
            except PipelineError as error:  # the file itself (unreadable, bad page selection)
                job.failed.append(error.message)
    except KeyboardInterrupt:
        stop.set()  # running pages end now; what was written stays for the next run
        bar.write("interrupted: finished pages are kept; run the same command again to resume", file=sys.stderr)
        pool.shutdown(wait=True, cancel_futures=True)
        return 1
    finally:
        pool.shutdown(wait=True)
        bar.close()
    failures = [(job, message) for job in jobs for message in job.failed]
    for job, message in failures:
        print(f"{job.path}: {message}", file=sys.stderr)
    written = sum(page_done(j.directory, n, pipeline.spec.key, mode) for j in jobs for n in j.selected)
    print(f"{len(jobs)} file(s) -> {args.out}: {written} page(s) written"
          + (f", {len(failures)} failure(s); run the same command again to retry" if failures else ""))
    return 1 if failures else 0
