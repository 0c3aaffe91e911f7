"""The app's own model path on a GPU, without any weights to download.

Each architecture's tiny random-weight twin (the tests' builders) is saved to a folder, loaded
through load_pipeline (the catalogue's loader: bf16, sdpa, device_map on CUDA) and parses the
2-page example PDF with the default decoding (`generate`); qwen2_5_vl_3b also with the opt-in
fast path (compiled static-cache decoding). Random weights write nonsense: this checks that every
family loads, runs and parses on the device, not what it reads. One JSON row per run.

    python bench/cuda_smoke.py --out bench/results --name cuda_smoke_h200
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from pipelines import ParseOptions, load_pipeline  # noqa: E402
from pipelines.pipeline import failed_pages  # noqa: E402
from tests.test_dots_native import build_dots_twin  # noqa: E402
from tests.twins import QWEN_PIXELS, build_twin  # noqa: E402

KEYS = ("qwen2_5_vl_3b", "dots_ocr", "qwen3_vl_2b", "qwen2_vl_2b", "glm_ocr", "paddleocr_vl", "lighton_ocr",
        "got_ocr2", "florence2", "deepseek_ocr2")
FAST = ("qwen2_5_vl_3b",)  # compiling the fast path costs tens of seconds a model
PDF = REPO / "assets" / "paper_two_column.pdf"


def run(key: str, decoding: str, root: Path) -> dict:
    row: dict = {"model": key, "decoding": decoding}
    started = time.perf_counter()
    try:
        twin = build_dots_twin(root / key) if key == "dots_ocr" else build_twin(key, root)
        pipeline = load_pipeline(key, model_path=twin, decoding=decoding, **QWEN_PIXELS)
        result = pipeline.parse_document(PDF, pipeline.spec.default_mode, options=ParseOptions(max_new_tokens=48))
        engine = pipeline.engine
        row.update(device=str(engine._loaded.device), dtype=str(engine._loaded.model.dtype),
                   note=engine.decoding_note, pages=len(result.pages),
                   raw=[p.raw_output[:120] for p in result.pages],
                   peak_gib=torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
                   failed=failed_pages(result), elements=[len(p.elements) for p in result.pages],
                   tokens=[p.tokens for p in result.pages], warnings=[p.warnings for p in result.pages][:2],
                   timings=result.pages[0].timings)
        engine.unload()
    except Exception as error:  # noqa: BLE001 - one family failing must not hide the others
        row["error"] = f"{type(error).__name__}: {error}"[:400]
        row["trace"] = traceback.format_exc()[-1500:]
    row["s"] = round(time.perf_counter() - started, 1)
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(KEYS))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--name", default="cuda_smoke")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as root:
        for key in args.models.split(","):
            for decoding in ("generate", "fast") if key in FAST else ("generate",):
                rows.append(run(key, decoding, Path(root)))
                print(json.dumps(rows[-1], default=str)[:300], flush=True)
                (args.out / f"{args.name}.json").write_text(json.dumps(rows, indent=1, default=str))
    return rows


if __name__ == "__main__":
    main()
