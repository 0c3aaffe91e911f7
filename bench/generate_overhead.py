"""Where transformers' `generate` spends its time per token on a GPU, in one process.

dots.ocr at its published size with random weights (bench/generation.py's build), the example
paper page at 200 dpi, greedy. Four ways of decoding the same page, in this order, each timed on
--tokens tokens after a short warm-up (per token: the time beyond a 2-token run, over --tokens):
  project_generate        the app's generate (pipelines.engines.hf_generation.generate);
  plain_generate          model.generate with the same generation config;
  plain_generate_no_mask  the same without the attention mask;
  bare_loop_sync          a hand-written loop of forward calls on the KV cache, synced each token.
The order matters, and is what the committed H200 run showed: with PyTorch's cuDNN attention,
the first variant decodes through KV lengths no call has met yet and pays a cuDNN graph build
at each one; the later variants meet the same lengths again and reuse the graphs. The app now
switches cuDNN attention off when it loads a model for CUDA (hf_loading.avoid_cudnn_attention);
--cudnn keep measures the old behaviour, --cudnn off (the default) what the app does.

    python bench/generate_overhead.py --out bench/results --name generate_overhead_h200
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import torch  # noqa: E402

import generation  # noqa: E402
from pipelines import get_spec, load_document  # noqa: E402
from pipelines.engines.hf_generation import _greedy_config, _on_device, generate  # noqa: E402
from pipelines.engines.hf_inputs import CHAT_TEMPLATE, page_inputs  # noqa: E402
from pipelines.families import ImageLimits, get_family  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=80)
    parser.add_argument("--cudnn", choices=("off", "keep"), default="off")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--name", default="generate_overhead")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tiny = device == "cpu"  # a CPU smoke run on the toy sizes
    key = "dots_ocr"
    loaded = generation.build(key, tiny, device, torch.float32 if tiny else torch.bfloat16)
    if args.cudnn == "keep" and device == "cuda":
        torch.backends.cuda.enable_cudnn_sdp(True)  # build() switched it off, as the app does
    page = load_document(generation.SOURCE, dpi=200, pages="1").pages[0]
    limits = ImageLimits(*generation.TINY_PIXELS) if tiny else ImageLimits()
    request = get_family(get_spec(key).family).request(generation.MODES[key], *page.size, limits)
    inputs = page_inputs(loaded.processor, CHAT_TEMPLATE, page.image, request.prompt, request.system,
                         request.model_size, request.processor_kwargs)
    model, tensors = loaded.model, _on_device(loaded, inputs)
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name() if device == "cuda" else "CPU", "torch": torch.__version__,
        "transformers": metadata.version("transformers"), "model": key, "prompt_tokens": inputs.prompt_tokens,
        "tokens": args.tokens,
        "cudnn_attention": device == "cuda" and torch.backends.cuda.cudnn_sdp_enabled(), "ms_per_token": {},
    }

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    def timed(name: str, decode) -> None:
        decode(4)
        sync()
        started = time.perf_counter()
        decode(2)
        sync()
        short = time.perf_counter() - started
        started = time.perf_counter()
        decode(args.tokens + 2)
        sync()
        results["ms_per_token"][name] = round(1000 * (time.perf_counter() - started - short) / args.tokens, 2)
        print(name, results["ms_per_token"][name], flush=True)

    def plain(n: int, mask: bool = True) -> None:
        given = tensors if mask else {k: v for k, v in tensors.items() if k != "attention_mask"}
        with torch.inference_mode():
            model.generate(**given, generation_config=_greedy_config(loaded, n))

    def bare(n: int) -> None:
        with torch.inference_mode():
            output = model(**tensors, use_cache=True, logits_to_keep=1)
            cache, token = output.cache, output.logits[:, -1].argmax(-1, keepdim=True)
            for _ in range(n - 1):
                output = model(input_ids=token, cache=cache, use_cache=True)
                token = output.logits[:, -1].argmax(-1, keepdim=True)
                token.item()

    timed("project_generate", lambda n: generate(loaded, inputs, n, True))
    timed("plain_generate", plain)
    timed("plain_generate_no_mask", lambda n: plain(n, mask=False))
    timed("bare_loop_sync", bare)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
