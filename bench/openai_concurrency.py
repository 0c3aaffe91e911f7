"""Pages per second through OpenAI-compatible servers on 127.0.0.1: N pages in flight vs one at a time.

The servers are `transformers serve` processes serving the tiny Qwen2.5-VL twin (tests/twins.py),
the same loopback setup the tests use, so this runs anywhere with no weights and no GPU. Each
repetition measures, side by side and in alternating order:
  - sequential: 1 page in flight, 1 server (what a plain loop over pages does);
  - concurrent: N pages in flight, 1 server;
  - concurrent, 2 servers: N pages in flight spread over two base URLs (with --servers 2).
Every configuration parses the same pages with the same prompt and token budget (greedy), so the
work is identical; only the dispatch differs.

    python bench/openai_concurrency.py                       # writes bench/results/openai_concurrency.{json,md}
    python bench/openai_concurrency.py --pages 16 --in-flight 8 --repeat 2 --out /tmp/r
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from pipelines import ParseOptions, load_document, load_pipeline  # noqa: E402
from tests.server_fixture import start_transformers_serve  # noqa: E402
from tests.twins import build_twin  # noqa: E402

KEY = "qwen2_5_vl_3b"
MODE = "text_only"
SOURCE = REPO / "assets" / "paper_two_column.pdf"
# The twin's processor budget (tests/twins.py QWEN_PIXELS): pages are sent inside it.
MIN_PIXELS, MAX_PIXELS = 28 * 28 * 4, 28 * 28 * 48


def pages_document(count: int, dpi: float):
    """`count` pages: the example paper's pages, repeated."""
    source = load_document(SOURCE, dpi=dpi)
    document = load_document(SOURCE, dpi=dpi)
    document.pages = [source.pages[i % len(source.pages)] for i in range(count)]
    return document


def run_once(base_urls: list[str], model: str, in_flight: int, document, max_new_tokens: int) -> dict:
    pipe = load_pipeline(KEY, backend="openai", base_urls=base_urls, served_model=model, concurrency=in_flight,
                         min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, timeout_s=600)
    started = time.perf_counter()
    result = pipe.parse_pages(document, MODE, ParseOptions(max_new_tokens=max_new_tokens))
    wall = time.perf_counter() - started
    assert not result.warnings, result.warnings
    return {
        "wall_s": wall,
        "generated_tokens": sum(p.tokens["generated"] for p in result.pages),
        "prompt_tokens": sum(p.tokens["prompt"] for p in result.pages),
        "mean_page_latency_s": statistics.mean(p.timings["total_s"] for p in result.pages),
    }


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {name: metadata.version(name) for name in ("torch", "transformers", "openai", "fastapi", "uvicorn")}
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), **versions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=32)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--servers", type=int, choices=(1, 2), default=2)
    parser.add_argument("--dpi", type=float, default=200)
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()

    document = pages_document(args.pages, args.dpi)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as root:
        twin = build_twin(KEY, Path(root))
        servers = [start_transformers_serve(twin, root) for _ in range(args.servers)]
        try:
            urls = [s.base_url for s in servers]
            configs = {"sequential": (urls[:1], 1), "concurrent": (urls[:1], args.in_flight)}
            if args.servers == 2:
                configs["concurrent_2_servers"] = (urls, args.in_flight)
            warm = load_document(SOURCE, dpi=args.dpi, pages="1")
            for url in urls:  # first requests pay for lazy imports and allocations
                run_once([url], servers[0].model, 1, warm, 8)
            runs: dict[str, list[dict]] = {name: [] for name in configs}
            for repetition in range(args.repeat):
                order = list(configs) if repetition % 2 == 0 else list(reversed(configs))
                for name in order:
                    base_urls, in_flight = configs[name]
                    runs[name].append(run_once(base_urls, servers[0].model, in_flight, document, args.max_new_tokens))
                    print(f"repeat {repetition + 1} {name}: {runs[name][-1]['wall_s']:.2f} s", flush=True)
        finally:
            for server in servers:
                server.stop()

    results = []
    for name, (base_urls, in_flight) in configs.items():
        walls = [r["wall_s"] for r in runs[name]]
        results.append({
            "config": name, "servers": len(base_urls), "in_flight": in_flight, "runs_s": walls,
            "median_s": statistics.median(walls), "pages_per_s": args.pages / statistics.median(walls),
            "generated_tokens": runs[name][0]["generated_tokens"], "prompt_tokens": runs[name][0]["prompt_tokens"],
            "mean_page_latency_s": statistics.median(r["mean_page_latency_s"] for r in runs[name]),
        })
    sequential = results[0]["pages_per_s"]
    ratios = {r["config"]: r["pages_per_s"] / sequential for r in results[1:]}
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "inputs": {"model": f"{KEY} tiny twin (tests/twins.py, random weights) on `transformers serve --device cpu`",
                   "source": str(SOURCE.relative_to(REPO)), "pages": args.pages, "dpi": args.dpi,
                   "page_size": list(document.pages[0].size), "mode": MODE, "max_new_tokens": args.max_new_tokens,
                   "pixel_budget": [MIN_PIXELS, MAX_PIXELS], "repeat": args.repeat},
        "results": results,
        "ratio_vs_sequential": ratios,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "openai_concurrency.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "openai_concurrency.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    m, i = report["machine"], report["inputs"]
    rows = [f"| {r['config']} | {r['servers']} | {r['in_flight']} | {r['median_s']:.2f} | {r['pages_per_s']:.2f} | "
            f"{report['ratio_vs_sequential'].get(r['config'], 1.0):.2f}x | {r['mean_page_latency_s']:.2f} | "
            f"{r['generated_tokens']} |" for r in report["results"]]
    return "\n".join([
        "# Pages per second through OpenAI-compatible servers: in flight vs sequential",
        "",
        f"{report['date']} · {m['cpu']} ({m['cores']} cores) · Python {m['python']} · torch {m['torch']} · "
        f"transformers {m['transformers']} · openai {m['openai']}",
        "",
        f"Inputs: {i['pages']} pages of `{i['source']}` at {i['dpi']:g} dpi ({i['page_size'][0]}x{i['page_size'][1]}), "
        f"mode `{i['mode']}`, {i['max_new_tokens']} new tokens per page (greedy), sent inside the twin's pixel budget; "
        f"model: {i['model']}. Median of {i['repeat']} runs per configuration, measured side by side "
        "in alternating order.",
        "",
        "| configuration | servers | pages in flight | median wall s | pages/s | vs sequential | mean page latency s | tokens generated |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "`transformers serve` runs one `generate` at a time per model (a single inference thread; continuous "
        "batching there is for text-only models), so on one server the gain comes from overlapping each "
        "page's client work (resize, PNG encoding, parsing) and the server's request handling with another "
        "page's generation. A second server process adds a second generation stream. vLLM and SGLang batch "
        "concurrent requests on the GPU (continuous batching), where pages in flight is what fills the batch.",
        "",
    ])


if __name__ == "__main__":
    main()
