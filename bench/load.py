"""Load test: N concurrent clients against a running app on loopback, each reading its own document.

Each client gets a distinct generated page (PNG, and a couple of one-page PDFs) carrying a unique
code in large text, e.g. "DOC 4821 ALPHA"; the `classic` engine really OCRs it, so an answer that
lacks the client's own code, or carries another client's, shows results crossing between requests.
Bounded: at most 32 clients, R requests each, and no request starts after --duration-s.

    python bench/load.py --clients 8 --requests 3          # starts app.py itself on a free port
    python bench/load.py --url http://127.0.0.1:7860 --pid 1234 --via mixed

Writes bench/results/load.{json,md} (or --out DIR) and prints the Markdown.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.app_server import _healthy, _stop, free_port  # noqa: E402  (the tests' way to run app.py)

MAX_CLIENTS = 32
WORDS = ("ALPHA BRAVO CHARLIE DELTA ECHO FOXTROT GOLF HOTEL INDIA JULIET KILO LIMA MIKE NOVEMBER OSCAR PAPA "
         "QUEBEC ROMEO SIERRA TANGO UNIFORM VICTOR WHISKEY XRAY YANKEE ZULU AMBER CORAL INDIGO MAROON OLIVE "
         "SILVER").split()
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
BACKPRESSURE = (429, 503)  # with Retry-After: the admission limit said "busy", not a failure


def norm(text: str) -> str:
    """Upper case letters and digits only, so OCR's spacing does not matter."""
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def check_answer(text: str, code: str, other_codes: list[str]) -> str:
    """"ok" when the answer carries its own document's code and no other client's."""
    found = norm(text)
    return "ok" if norm(code) in found and not any(norm(c) in found for c in other_codes) else "wrong_document"


def make_documents(count: int, folder: Path, seed: int = 7) -> list[tuple[Path, str]]:
    """`count` distinct pages (the last up to two as PDFs), each with its own code; (path, code)."""
    rng = random.Random(seed)
    # Digits 2-9 only: 0/O and 1/I are the pairs OCR most often swaps.
    numbers = rng.sample([n for n in range(2000, 10000) if not set(str(n)) & {"0", "1"}], count)
    font = ImageFont.truetype(str(FONT), 80) if FONT.exists() else ImageFont.load_default(size=80)
    documents = []
    for index in range(count):
        code = f"DOC {numbers[index]} {WORDS[index]}"
        page = Image.new("RGB", (1200, 800), "white")
        ImageDraw.Draw(page).text((80, 340), code, fill="black", font=font)
        as_pdf = index >= count - min(2, count // 2)
        path = folder / f"client{index:02d}.{'pdf' if as_pdf else 'png'}"
        # At 200 dpi (the app's default) the PDF page renders back to the same 1200x800 pixels.
        page.save(path, **({"resolution": 200.0} if as_pdf else {}))
        documents.append((path, code))
    return documents


def mib(size: int | None) -> float | None:
    return None if size is None else round(size / 2**20, 1)


def rss_bytes(pid: int) -> int:
    try:
        import psutil
        return psutil.Process(pid).memory_info().rss
    except ImportError:
        status = Path(f"/proc/{pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024


class MemorySampler(threading.Thread):
    """RSS of the server process every 0.2 s, so the peak between requests is seen too."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, rss_bytes(pid), threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except Exception:  # noqa: BLE001 - the process went away; keep the peak seen
                return


def send_rest(url: str, path: Path, mode: str, timeout_s: float) -> tuple[int | None, str, float]:
    """(status, answer text, Retry-After s) of one POST /analyze_layout."""
    with open(path, "rb") as handle:
        response = requests.post(f"{url}/analyze_layout", files={"file": (path.name, handle)},
                                 data={"model": "classic", "mode": mode}, timeout=timeout_s)
    retry_after = float(response.headers.get("Retry-After") or 0)
    if response.status_code != 200:
        return response.status_code, response.text, retry_after
    body = response.json()
    text = " ".join(p.get("markdown", "") + " " + " ".join(e.get("text") or "" for e in p.get("elements", []))
                    for p in body.get("pages", []))
    return 200, text, 0.0


def send_gradio(client, path: Path, mode: str) -> tuple[int | None, str, float]:
    """The same through the Gradio event /parse (see README); a busy refusal is a gr.Error."""
    from gradio_client import handle_file
    try:
        result = client.predict(handle_file(str(path)), "classic", mode, 200, "", None, None, None, False, "", "",
                                "", "", api_name="/parse")  # the last two (server URLs, served model) are required
    except Exception as error:  # noqa: BLE001 - gradio_client raises AppError and others
        busy = any(word in str(error).lower() for word in ("busy", "queue is full"))
        return (503 if busy else None), f"{type(error).__name__}: {error}", 5.0
    return 200, f"{result[2]} {json.dumps(result[3])}", 0.0


def run_client(index: int, args, documents, deadline: float, records: list, lock: threading.Lock) -> None:
    path, code = documents[index]
    others = [c for i, (_, c) in enumerate(documents) if i != index]
    via = args.via if args.via != "mixed" else ("rest", "gradio")[index % 2]
    client = None
    if via == "gradio":
        from gradio_client import Client
        client = Client(args.url, verbose=False)  # built before timing: it fetches the app's config
    for _ in range(args.requests):
        if time.monotonic() >= deadline:
            break  # the time cap: nothing new starts
        record = {"client": index, "via": via, "retried": False}
        for attempt in (0, 1):
            started = time.perf_counter()
            try:
                if via == "rest":
                    status, text, retry_after = send_rest(args.url, path, args.mode, args.timeout_s)
                else:
                    status, text, retry_after = send_gradio(client, path, args.mode)
            except Exception as error:  # noqa: BLE001 - refused connection, timeout, bad JSON: all errors
                status, text, retry_after = None, f"{type(error).__name__}: {error}", 0.0
            record.update(status=status, latency_s=time.perf_counter() - started)
            wait = min(retry_after or 1.0, 30.0)
            if status in BACKPRESSURE and args.retry and attempt == 0 and time.monotonic() + wait < deadline:
                record["retried"] = True
                time.sleep(wait)
                continue
            break
        if status == 200:
            record["outcome"] = check_answer(text, code, others)
            if record["outcome"] != "ok":
                record["detail"] = f"expected {code!r}, got {text[:200]!r}"
        elif status in BACKPRESSURE:
            record["outcome"] = "refused"
        else:
            record["outcome"] = "error"
            record["kind"] = f"HTTP {status}" if status else text.split(":")[0]
            record["detail"] = text[:300]
        with lock:
            records.append(record)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: a latency some request really had."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else None


def start_app(port: int, log_file) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)], cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "GRADIO_ANALYTICS_ENABLED": "False"},
        stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)  # own group: stopped alone
    deadline = time.monotonic() + 120
    while not _healthy(f"http://127.0.0.1:{port}/health"):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            log_file.seek(0)
            raise RuntimeError(f"app.py did not start:\n{log_file.read().decode(errors='replace')[-3000:]}")
        time.sleep(0.25)
    return process


def measure(args, pid: int | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="load-docs-") as folder:
        documents = make_documents(args.clients, Path(folder))
        rss_start = rss_bytes(pid) if pid else None
        # Unmeasured requests first: loading the engine is a one-off, not growth under load.
        warmup = [send_rest(args.url, documents[0][0], args.mode, args.timeout_s)[0] for _ in range(args.warmup)]
        rss_before = rss_bytes(pid) if pid else None
        sampler = MemorySampler(pid) if pid else None  # its peak: the load phase only
        if sampler:
            sampler.start()
        records: list[dict] = []
        lock = threading.Lock()
        started = time.monotonic()
        deadline = started + args.duration_s
        threads = [threading.Thread(target=run_client, args=(i, args, documents, deadline, records, lock))
                   for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - started
    rss_after = rss_bytes(pid) if pid else None
    if sampler:
        sampler.stop.set()
        sampler.join()
    ok = [r for r in records if r["outcome"] == "ok"]
    latencies = [r["latency_s"] for r in records if r["status"] == 200]
    return {
        "clients": args.clients, "requests_per_client": args.requests, "via": args.via, "mode": args.mode,
        "warmup_statuses": warmup, "requests": len(records), "ok": len(ok),
        "errors": sum(r["outcome"] == "error" for r in records),
        "errors_by_kind": dict(Counter(r["kind"] for r in records if r["outcome"] == "error")),
        "refused_backpressure": sum(r["outcome"] == "refused" for r in records),
        "retried_after_backpressure": sum(r["retried"] for r in records),
        "wrong_document": sum(r["outcome"] == "wrong_document" for r in records),
        "latency_s": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
                      "max": max(latencies, default=None), "all": sorted(latencies)},
        "wall_s": wall, "throughput_rps": len(ok) / wall if wall else 0.0,
        "rss_mib": {"start": mib(rss_start), "before": mib(rss_before), "peak": mib(sampler.peak if sampler else None),
                    "after": mib(rss_after),
                    "growth": mib(rss_after - rss_before) if pid else None},
        "problems": [r for r in records if r["outcome"] in ("error", "wrong_document")][:20],
        "machine": {"cpus": os.cpu_count(), "system": platform.system(), "python": platform.python_version()},
        "command": " ".join(["python", "bench/load.py", *args.argv]),
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _row(cells) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def markdown(report: dict) -> str:
    lat, rss, machine = report["latency_s"], report["rss_mib"], report["machine"]
    errors = ", ".join(f"{kind}: {count}" for kind, count in report["errors_by_kind"].items()) or "none"
    load = [report[k] for k in ("requests", "ok", "errors", "refused_backpressure", "wrong_document")]
    title = (f"# Load: {report['clients']} clients x {report['requests_per_client']} requests "
             f"({report['via']}, classic, {report['mode']})")
    machine = (f"Machine: {machine['cpus']} CPUs, {machine['system']}, Python {machine['python']}. "
               f"Command: `{report['command']}`")
    return "\n".join([title, "", machine, "",
                      _row(["requests", "ok", "errors", "refused (backpressure)", "wrong document", "p50 s",
                            "p95 s", "max s", "req/s"]), _row(["---"] * 9),
                      _row([*load, *(_fmt(lat[k]) for k in ("p50", "p95", "max")), _fmt(report["throughput_rps"], 3)]),
                      "", _row(["server RSS (MiB)", "at start", "before (after warm-up)", "peak", "after", "growth"]),
                      _row(["---"] * 6),
                      _row(["app.py", *(_fmt(rss[k], 1) for k in ("start", "before", "peak", "after", "growth"))]),
                      "", f"Errors by kind: {errors}. Wall time {report['wall_s']:.1f} s.", ""])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4, help=f"concurrent clients (1-{MAX_CLIENTS})")
    parser.add_argument("--requests", type=int, default=3, help="requests per client")
    parser.add_argument("--duration-s", type=float, default=120.0, help="no new request starts after this")
    parser.add_argument("--timeout-s", type=float, default=300.0, help="per request")
    parser.add_argument("--mode", default="text_only", choices=["text_only", "layout_all"])
    parser.add_argument("--via", default="rest", choices=["rest", "gradio", "mixed"])
    parser.add_argument("--retry", action="store_true", help="retry a 503/429 once after Retry-After")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured requests first (engine load)")
    parser.add_argument("--url", help="an app already running (default: start app.py on a free port)")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, to measure its memory")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not 1 <= args.clients <= MAX_CLIENTS or args.requests < 1:
        parser.error(f"--clients must be 1-{MAX_CLIENTS} and --requests at least 1")
    with tempfile.TemporaryFile() as log_file:
        process = None
        if not args.url:
            port = free_port()
            process = start_app(port, log_file)
            args.url = f"http://127.0.0.1:{port}"
        args.url = args.url.rstrip("/")
        try:
            report = measure(args, process.pid if process else args.pid)
        finally:
            if process:
                _stop(process)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "load.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "load.md").write_text(markdown(report))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
