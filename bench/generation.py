"""Decoding speed: transformers' `generate` vs the project's fast path, side by side, in one run.

No downloads: each architecture is built at its published size with random weights (dots.ocr:
42-layer 1536-wide ViT + Qwen2 1.5B LM; Qwen2-VL-2B; Qwen3-VL-2B), with the tests' small trained
tokenizers and the real image processors. The page is assets/paper_two_column.pdf rendered at
200 dpi (A4: 1654x2339 px), sent at the family's model size, with the family's prompt. The end
tokens' output rows are zeroed so that every page runs its full token budget.

Measured per model, for `generate` (dynamic cache, sdpa) and for the fast path (static KV cache,
compiled decode step, pages batched by the model's batcher):
  - prefill s (to the first token), ms per token, one page of --page-tokens tokens;
  - decode tokens/s at each --batches size (the same page in every row), prefill of the batch;
  - pages/s on a --job-pages job of --page-tokens tokens per page (fast path measured; generate
    estimated from its largest batch, since running it would take many minutes);
  - peak GPU memory of each measurement; first-call time (compiling the decode shapes);
  - where greedy outputs first diverge (fast vs generate at batch 1; batched rows vs batch 1), and
    how close generate's top two logits were there (a near tie that rounding can flip, or not);
  - app overhead per page: intake (PDF render), model inputs, parsing + Markdown + drawing.
Writes JSON and a Markdown table. --tiny runs toy sizes on the CPU in seconds (a smoke test, in CI).

    python bench/generation.py                      # GPU: writes bench/results/generation.{json,md}
    python bench/generation.py --tiny --out /tmp/b  # CPU smoke run
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from pipelines import get_spec, load_document  # noqa: E402
from pipelines.engines.batcher import DecodeRequest  # noqa: E402
from pipelines.engines.hf_generation import decode_batched, generate, start_fast_decoding  # noqa: E402
from pipelines.engines.hf_inputs import CHAT_TEMPLATE, page_inputs  # noqa: E402
from pipelines.engines.hf_loading import LoadedModel, avoid_cudnn_attention  # noqa: E402
from pipelines.families import ImageLimits, get_family  # noqa: E402

SOURCE = REPO / "assets" / "paper_two_column.pdf"
RECORDED_ANSWER = REPO / "tests" / "recorded" / "dots_ocr_layout_all.json"

# Published sizes (config.json of rednote-hilab/dots.ocr, Qwen/Qwen2-VL-2B-Instruct, Qwen/Qwen3-VL-2B-Instruct).
REAL_TEXT = {
    "dots_ocr": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                     num_key_value_heads=2, rope_theta=1000000.0, max_position_embeddings=131072,
                     vocab_size=151936),
    "qwen2_vl_2b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                        num_key_value_heads=2, max_position_embeddings=32768, vocab_size=151936,
                        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                         "mrope_section": [16, 24, 24]}),
    "qwen3_vl_2b": dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                        num_key_value_heads=8, head_dim=128, max_position_embeddings=262144, vocab_size=151936,
                        rope_parameters={"rope_type": "default", "rope_theta": 5000000.0,
                                         "mrope_section": [24, 20, 20], "mrope_interleaved": True}),
}
REAL_VISION = {
    "dots_ocr": dict(embed_dim=1536, hidden_size=1536, intermediate_size=4224, num_hidden_layers=42,
                     num_attention_heads=12),
    "qwen2_vl_2b": dict(depth=32, embed_dim=1280, hidden_size=1536, mlp_ratio=4, num_heads=16),
    "qwen3_vl_2b": dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, out_hidden_size=2048,
                        num_position_embeddings=2304, deepstack_visual_indexes=[5, 11, 17]),
}
MODES = {"dots_ocr": "layout_all", "qwen2_vl_2b": "text_only", "qwen3_vl_2b": "text_only"}
# Toy runs keep the twins' sizes and a small page budget.
TINY_PIXELS = (28 * 28 * 4, 28 * 28 * 64)


def build(key: str, tiny: bool, device: str, dtype, layers: int | None = None) -> LoadedModel:
    """A random-weight model of this architecture (real size unless tiny) with a working processor.

    layers: keep the real widths, heads and vocabulary but only this many LM and vision layers
    (a CPU check of the real-size code paths)."""
    text, vision = dict(REAL_TEXT[key]), dict(REAL_VISION[key])
    if layers:
        text["num_hidden_layers"] = layers
        vision["depth" if "depth" in vision else "num_hidden_layers"] = layers
        if "deepstack_visual_indexes" in vision:
            vision["deepstack_visual_indexes"] = list(range(min(layers, 3)))
    if key == "dots_ocr":
        config, processor = _dots(tiny, text, vision)
    else:
        from tests.twins import BUILDERS

        config, processor, _ = BUILDERS[key]()
        if not tiny:
            settings = config.to_dict()
            settings["text_config"].pop("layer_types", None)  # one per layer: derived again
            settings["text_config"].update(text, tie_word_embeddings=True)
            settings["vision_config"].update(vision)
            settings["tie_word_embeddings"] = True
            config = type(config)(**settings)
    from transformers import AutoModelForImageTextToText

    if device.startswith("cuda"):
        avoid_cudnn_attention()  # as the app's loader does
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype)
    model.eval()
    tokenizer = processor.tokenizer
    ends = sorted({tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>", "<|endofassistant|>")
                   if t in tokenizer.get_vocab()})
    model.generation_config.eos_token_id = ends
    model.generation_config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else ends[0]
    model.generation_config.do_sample = False
    with torch.no_grad():  # random weights must not end a page early: the end tokens can never win
        # (with tied embeddings this also zeroes their input rows: harmless for random weights)
        model.get_output_embeddings().weight[ends] = 0
    return LoadedModel(model, processor, device, dtype, CHAT_TEMPLATE)


def _dots(tiny: bool, real_text: dict, real_vision: dict):
    import pipelines.dots_ocr as dots
    from tests.test_dots_native import SPECIAL_TOKENS, TINY_TEXT, TINY_VISION, tiny_tokenizer
    from transformers import Qwen2VLImageProcessor

    tokenizer = tiny_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    processor = dots.DotsVLProcessor(Qwen2VLImageProcessor(**dots.IMAGE_PROCESSOR_SETTINGS), tokenizer,
                                     chat_template=dots.CHAT_TEMPLATE)
    text = TINY_TEXT if tiny else real_text
    vision = TINY_VISION if tiny else real_vision
    settings = dict(text, vocab_size=max(len(tokenizer), text.get("vocab_size", 0)))
    config = dots.DotsOCRConfig(image_token_id=ids["<|imgpad|>"], video_token_id=ids["<|video_pad|>"],
                                pad_token_id=ids["[PAD]"], vision_config=vision, **settings)
    return config, processor


# -- measurements ------------------------------------------------------------------------------------

class Clock:
    """Elapsed seconds and peak GPU memory of one measurement."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.started
        self.peak_gib = torch.cuda.max_memory_allocated() / 2**30 if self.cuda else None


def page_numbers(generation, measured: Clock) -> dict:
    """One page's prefill, ms per token after it, page time, tokens and peak memory."""
    decode_s = generation.generate_s - generation.first_token_s
    return {"prefill_s": generation.first_token_s, "page_s": generation.generate_s, "tokens": generation.generated,
            "ms_per_token": 1000 * decode_s / max(generation.generated - 1, 1), "peak_gib": measured.peak_gib}


def on_device(loaded: LoadedModel, tensors) -> dict:
    """The prompt's tensors on the model's device, floating ones in its dtype."""
    moved = {k: v.to(loaded.device) for k, v in tensors.items()}
    return {k: v.to(loaded.dtype) if v.is_floating_point() else v for k, v in moved.items()}


def first_divergence(a, b) -> int | None:
    """Index of the first differing token (or the shorter length), None when identical."""
    for index, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return index
    return None if len(a) == len(b) else min(len(a), len(b))


def near_tie(loaded: LoadedModel, inputs, step: int) -> dict:
    """How close `generate`'s top two logits were at a decode step: where the paths diverge on a
    gap smaller than the dtype's spacing at that size, rounding alone can flip the argmax; a wide
    gap there means the paths computed different logits (a fault, not rounding)."""
    from pipelines.engines.hf_generation import _greedy_config, _on_device

    with torch.inference_mode():
        logits = loaded.model.generate(**_on_device(loaded, inputs), generation_config=_greedy_config(loaded, step + 1),
                                       min_new_tokens=step + 1, output_logits=True,
                                       return_dict_in_generate=True).logits[step][0].float()
    first, second = logits.topk(2).values.tolist()
    spacing = torch.finfo(loaded.dtype).eps * 2.0 ** math.floor(math.log2(max(abs(first), 1e-30)))
    return {"step": step, "top2_gap": first - second, "top1": first, "dtype_spacing": spacing,
            "gap_in_spacings": (first - second) / spacing}


def repeated(tensors, rows: int):
    """The same page in `rows` rows of one batch (images concatenated, as processors batch them)."""
    batch = {}
    for name, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            batch[name] = value
        elif name in ("pixel_values", "image_grid_thw"):
            batch[name] = torch.cat([value] * rows)
        else:
            batch[name] = value.repeat(rows, *[1] * (value.ndim - 1))
    return batch


def generate_rows(loaded: LoadedModel, inputs, rows: int, tokens: int) -> dict:
    """transformers' generate on `rows` copies of the page: prefill, decode tokens/s, memory."""
    from transformers import LogitsProcessorList

    first = {}

    def clock(input_ids, scores):
        first.setdefault("at", time.perf_counter())
        return scores

    tensors = on_device(loaded, repeated(inputs.tensors, rows))
    with Clock(loaded.device) as measured, torch.inference_mode():
        output = loaded.model.generate(**tensors, max_new_tokens=tokens, do_sample=False,
                                       logits_processor=LogitsProcessorList([clock]))
    prefill = first["at"] - measured.started
    new = output[:, inputs.prompt_tokens:]
    return {"rows": rows, "tokens": int(new.shape[1]), "prefill_s": prefill, "total_s": measured.seconds,
            "decode_tokens_per_s": rows * (new.shape[1] - 1) / max(measured.seconds - prefill, 1e-9),
            "ms_per_step": 1000 * (measured.seconds - prefill) / max(new.shape[1] - 1, 1),
            "peak_gib": measured.peak_gib, "token_ids": new.tolist()}


def fast_rows(batcher, loaded: LoadedModel, inputs, rows: int, tokens: int) -> dict:
    """The fast path with `rows` pages submitted at once: prefill (each page alone), decode tokens/s."""
    tensors = on_device(loaded, inputs.tensors)
    requests = [DecodeRequest(dict(tensors), tokens) for _ in range(rows)]
    before = dict(batcher.stats)
    threads = [threading.Thread(target=batcher.submit, args=(r,)) for r in requests]
    with Clock(loaded.device) as measured:
        with batcher.held():  # every row queued before the worker takes any: one batch, whatever the load
            for thread in threads:
                thread.start()
            while batcher.waiting() < rows:
                time.sleep(0.001)
        for thread in threads:
            thread.join()
    prefill = batcher.stats["prefill_s"] - before.get("prefill_s", 0.0)
    steps = batcher.stats["steps"] - before.get("steps", 0)
    # As for generate: decoding is the wall time less the prefills (the worker runs one thing at a
    # time), so the batcher's own bookkeeping between steps counts against it.
    decode = measured.seconds - prefill
    return {"rows": rows, "tokens": len(requests[0].tokens), "prefill_s": prefill, "total_s": measured.seconds,
            "decode_tokens_per_s": sum(len(r.tokens) - 1 for r in requests) / max(decode, 1e-9),
            "ms_per_step": 1000 * decode / max(steps, 1), "peak_gib": measured.peak_gib,
            "max_rows_busy": batcher.stats["max_rows_busy"], "token_ids": [r.tokens for r in requests]}


_ANSWERS: dict = {}


def realistic_answer(page, model_size: tuple[int, int]) -> tuple[str, str]:
    """A dots.ocr-format answer holding what the classic engine reads on this page (boxes scaled to
    the model's input size), so parsing and drawing cost what a real page costs; else the tests'
    recorded answer. Returns (answer, where it came from)."""
    key = (page.size, model_size)
    if key not in _ANSWERS:
        try:
            from pipelines import load_pipeline

            elements = load_pipeline("classic").parse_document(page.image, "layout_all").pages[0].elements
            sx, sy = model_size[0] / page.size[0], model_size[1] / page.size[1]
            cells = [{"bbox": [round(e.bbox[0] * sx), round(e.bbox[1] * sy), round(e.bbox[2] * sx),
                               round(e.bbox[3] * sy)], "category": e.category,  # the schema uses dots' names
                      "text": e.text} for e in elements]
            _ANSWERS[key] = (json.dumps(cells, ensure_ascii=False), f"classic engine, {len(cells)} cells")
        except Exception as error:  # noqa: BLE001 - the classic engine is optional here
            recorded = json.loads(RECORDED_ANSWER.read_text())
            answer = recorded["response"]["choices"][0]["message"]["content"]
            _ANSWERS[key] = (answer, f"recorded answer (classic engine unavailable: {error})")
    return _ANSWERS[key]


def app_overhead(key: str, loaded: LoadedModel, page, mode: str, limits) -> dict:
    """Seconds per page the app spends outside the model: intake, inputs, parse + Markdown + boxes."""
    from pipelines.render.draw import draw_elements
    from pipelines.render.markdown import page_markdown
    from pipelines.schema import PageResult

    request = get_family(get_spec(key).family).request(mode, *page.size, limits)
    started = time.perf_counter()
    page_inputs(loaded.processor, CHAT_TEMPLATE, page.image, request.prompt, request.system,
                request.model_size, request.processor_kwargs)
    inputs_s = time.perf_counter() - started
    dots = get_family("dots")
    model_size = dots.model_size(*page.size, ImageLimits())
    answer, origin = realistic_answer(page, model_size)
    started = time.perf_counter()
    parsed = dots.parse(answer, "layout_all", page.size, model_size)
    result = PageResult(page=0, width=page.size[0], height=page.size[1], model=key, mode=mode,
                        elements=parsed.elements, raw_output=answer)
    page_markdown(result)
    draw_elements(page.image, parsed.elements)
    post_s = time.perf_counter() - started
    return {"intake_s": page.decode_s, "inputs_s": inputs_s, "parse_render_s": post_s,
            "elements": len(parsed.elements), "answer": origin, "total_s": page.decode_s + inputs_s + post_s}


def measure(key: str, args, deadline: float) -> dict:
    device = args.device
    full = key in args.full_models.split(",")
    # Compiling costs tens of seconds per decode shape on a GPU: the other models get the batch-1
    # page and the batch-8 sweep only, to keep one run short (not yet run to completion on a GPU).
    batches = args.batches if full else [b for b in args.batches if b <= 8]
    job_pages = args.job_pages if full else 0
    if args.dtype != "auto":
        dtype = getattr(torch, args.dtype)
    else:
        dtype = torch.float32 if args.tiny or not device.startswith("cuda") else torch.bfloat16
    report: dict = {"model": key, "dtype": str(dtype).replace("torch.", ""), "skipped": []}
    started = time.perf_counter()
    loaded = build(key, args.tiny, device, dtype, args.layers)
    report["build_s"] = time.perf_counter() - started
    report["parameters"] = sum(p.numel() for p in loaded.model.parameters())
    mode = MODES[key]
    limits = ImageLimits(*TINY_PIXELS) if args.tiny else ImageLimits()
    page = load_document(SOURCE, dpi=args.dpi, pages="1").pages[0]
    request = get_family(get_spec(key).family).request(mode, *page.size, limits)
    inputs = page_inputs(loaded.processor, CHAT_TEMPLATE, page.image, request.prompt, request.system,
                         request.model_size, request.processor_kwargs)
    report.update(page_px=list(page.size), model_px=list(inputs.seen_size or request.model_size),
                  prompt_tokens=inputs.prompt_tokens, mode=mode)
    report["app_overhead"] = app_overhead(key, loaded, page, mode, limits)

    def time_left(needed: float, what: str) -> bool:
        if time.perf_counter() + needed > deadline:
            report["skipped"].append(what)
            return False
        return True

    n = args.page_tokens
    # 1. generate, one page.
    with Clock(device) as measured:
        naive = generate(loaded, inputs, n, True)
    report["generate"] = {**page_numbers(naive, measured), "batches": []}
    # 2. the fast path: first call (compiling the shapes this run uses), then one page.
    shapes = _shapes(inputs.prompt_tokens, n, batches, bool(job_pages))
    with Clock(device) as measured:
        fast = start_fast_decoding(loaded, compile=args.compile, max_batch=max(batches), warm_up=shapes)
    batcher = fast.batcher
    report["fast"] = {"path": fast.note, "first_call_s": measured.seconds, "warm_up_shapes": [list(s) for s in shapes],
                      "batches": []}
    with Clock(device) as measured:
        quick = decode_batched(batcher, loaded, inputs, n, True)
    report["fast"].update(page_numbers(quick, measured))
    split = first_divergence(quick.token_ids, naive.token_ids)
    report["divergence"] = {"fast_vs_generate_batch1": split,
                            "near_tie": near_tie(loaded, inputs, split) if split is not None and split < n else None,
                            "tokens": n}
    alone = list(quick.token_ids)
    # 2b. on CUDA, the other way to remove launch overhead: the uncompiled step as a CUDA graph.
    if batcher.decoder.mode == "inductor" and device.startswith("cuda") and time_left(2 * quick.generate_s + 30,
                                                                                        "CUDA graphs"):
        with Clock(device) as measured:
            graphs = start_fast_decoding(loaded, compile="graphs", max_batch=1,
                                         warm_up=tuple(s for s in shapes if s[0] == 1))
        first_call = measured.seconds
        with Clock(device) as measured:
            page_run = decode_batched(graphs.batcher, loaded, inputs, n, True)
        report["fast_graphs"] = {
            "path": graphs.note, "mode": graphs.batcher.decoder.mode, "first_call_s": first_call,
            **page_numbers(page_run, measured), "batches": [],
            "divergence_from_generate": first_divergence(page_run.token_ids, naive.token_ids),
        }
        graphs.batcher.close()
    # 3. batches, side by side.
    for rows in batches:
        estimate = report["generate"]["prefill_s"] * rows * 2 + args.steps * rows * 0.002
        if not time_left(estimate, f"batch {rows}"):
            continue
        naive_rows = generate_rows(loaded, inputs, rows, args.steps)
        fast_result = fast_rows(batcher, loaded, inputs, rows, args.steps)
        for name, result in (("generate", naive_rows), ("fast", fast_result)):
            ids = result.pop("token_ids")
            differing = [first_divergence(row, alone[:args.steps]) for row in ids]
            result["rows_diverging_from_fast_batch1"] = sum(d is not None for d in differing)
            result["first_divergence"] = min((d for d in differing if d is not None), default=None)
            report[name]["batches"].append(result)
    # 4. the job: --job-pages pages of n tokens, all submitted at once.
    per_page = report["fast"]["page_s"]
    if job_pages and time_left(per_page * job_pages / max(batches) * 2 + report["fast"]["prefill_s"] * job_pages,
                               "job"):
        job = fast_rows(batcher, loaded, inputs, job_pages, n)
        job.pop("token_ids")
        report["fast"]["job"] = {"pages": job_pages, "tokens_per_page": n, "wall_s": job["total_s"],
                                 "pages_per_s": job_pages / job["total_s"], "prefill_s": job["prefill_s"],
                                 "peak_gib": job["peak_gib"]}
    widest = max(report["generate"]["batches"], key=lambda b: b["rows"], default=None)
    if widest:  # generate on the job, estimated from its widest measured batch
        batch_s = widest["prefill_s"] + n * widest["ms_per_step"] / 1000
        report["generate"]["job_estimate"] = {"pages_per_s": widest["rows"] / batch_s, "from_rows": widest["rows"]}
    report["fast"]["compile_s"] = batcher.decoder.compile_s
    report["fast"]["mode"] = batcher.decoder.mode
    batcher.close()
    del loaded, batcher
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return report


def _shapes(prompt_tokens: int, page_tokens: int, batches: list[int], job: bool) -> tuple[tuple[int, int], ...]:
    """The decode shapes this run will meet, compiled up front like the app's warm-up at load."""
    from pipelines.engines.fast_decode import bucket_columns, bucket_rows

    margin = 9
    columns = {bucket_columns(prompt_tokens + margin)}
    while max(columns) < prompt_tokens + page_tokens + margin:
        columns.add(bucket_columns(max(columns) + 1))
    rows = {1} | {bucket_rows(b, max(batches)) for b in batches}
    short = bucket_columns(prompt_tokens + margin)
    shapes = {(1, c) for c in columns} | {(r, short) for r in rows}
    if job:  # the job runs at the widest batch, its cache growing like a page's
        shapes |= {(max(rows), c) for c in columns}
    return tuple(sorted(shapes))


# -- report ------------------------------------------------------------------------------------------

def markdown(results: dict) -> str:
    lines = [f"# Decoding benchmark ({results['device']})", "",
             f"{results['date']} · torch {results['torch']} · transformers {results['transformers']} · "
             f"page: {SOURCE.name} p1 at {results['args']['dpi']} dpi · {results['args']['page_tokens']} tokens "
             f"per page · batch sweeps of {results['args']['steps']} tokens", ""]
    batches = results["args"]["batches"]
    header = ("| model | path | prefill s | ms/token | page s | " + " | ".join(f"tok/s b{b}" for b in batches)
              + " | pages/s (job) | peak GiB b1 | first call s |")
    lines += [header, "|" + "---|" * (9 + len(batches) - 1)]
    for model in results["models"]:
        if "error" in model:
            lines.append(f"| {model['model']} | failed: {model['error']} |")
            continue
        for name in ("generate", "fast", "fast_graphs"):
            side = model.get(name)
            if side is None:
                continue
            per_batch = {b["rows"]: b for b in side["batches"]}
            rates = [f"{per_batch[b]['decode_tokens_per_s']:,.0f}" if b in per_batch else "–" for b in batches]
            if name == "fast_graphs":
                pages, label, first = "–", f"fast ({side['mode']}, batch 1 only)", f"{side['first_call_s']:.1f}"
            elif name == "fast":
                job = side.get("job")
                pages = f"{job['pages_per_s']:.2f} ({job['pages']} pages)" if job else "–"
                label, first = f"fast ({side['mode']})", f"{side['first_call_s']:.1f}"
            else:
                job = side.get("job_estimate")
                pages = f"~{job['pages_per_s']:.2f} (est.)" if job else "–"
                label, first = "generate", "–"
            peak = f"{side['peak_gib']:.2f}" if side.get("peak_gib") is not None else "–"
            lines.append(f"| {model['model']} | {label} | {side['prefill_s']:.3f} | {side['ms_per_token']:.2f} | "
                         f"{side['page_s']:.2f} | " + " | ".join(rates) + f" | {pages} | {peak} | {first} |")
    lines += ["", "Divergence of greedy tokens (None: identical):", ""]
    for model in results["models"]:
        if "error" in model:
            continue
        rows = "; ".join(f"{name} b{b['rows']}: {b['rows_diverging_from_fast_batch1']} rows differ from fast b1"
                         + (f" (first at token {b['first_divergence']})" if b["first_divergence"] is not None else "")
                         for name in ("generate", "fast") for b in model[name]["batches"])
        graphs = model.get("fast_graphs")
        extra = f"; CUDA-graphs path vs generate: {graphs['divergence_from_generate']}" if graphs else ""
        tie = model["divergence"].get("near_tie")
        gap = (f" (generate's top-2 gap there: {tie['top2_gap']:.3g}, {tie['gap_in_spacings']:.1f}x the "
               f"{model['dtype']} spacing at that size)") if tie else ""
        lines.append(f"- {model['model']}: fast vs generate at batch 1: "
                     f"{model['divergence']['fast_vs_generate_batch1']}{gap}{extra}; {rows}")
    lines += ["", "App overhead per page (outside the model):", ""]
    for model in results["models"]:
        if "error" in model:
            continue
        o = model["app_overhead"]
        share = 100 * o["total_s"] / model["fast"]["page_s"]
        lines.append(f"- {model['model']}: intake {o['intake_s']:.3f} s + inputs {o['inputs_s']:.3f} s + parse, "
                     f"Markdown and boxes ({o['elements']} elements) {o['parse_render_s']:.3f} s = "
                     f"{o['total_s']:.3f} s, {share:.1f}% of the fast path's page time")
        if model["skipped"]:
            lines.append(f"  - skipped for the time budget: {', '.join(model['skipped'])}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="toy sizes on the CPU (smoke test)")
    parser.add_argument("--models", default="dots_ocr,qwen2_vl_2b,qwen3_vl_2b")
    parser.add_argument("--device", default=None)
    parser.add_argument("--layers", type=int, default=None,
                        help="real widths and vocabulary but this many LM and vision layers (CPU checks)")
    parser.add_argument("--dpi", type=float, default=200)
    parser.add_argument("--page-tokens", type=int, default=None, help="tokens per page (default 1500; tiny 24)")
    parser.add_argument("--steps", type=int, default=None, help="tokens per batch sweep (default 128; tiny 12)")
    parser.add_argument("--batches", default=None, help="batch sizes (default 1,8,32; tiny 1,4)")
    parser.add_argument("--job-pages", type=int, default=None, help="pages in the job (default 64; tiny 6)")
    parser.add_argument("--full-models", default="dots_ocr",
                        help="models measured at every batch size and on the job; the others get batch 1 and 8")
    parser.add_argument("--compile", default="auto", help="auto, inductor, graphs or none")
    parser.add_argument("--dtype", default="auto", choices=("auto", "bfloat16", "float32"),
                        help="auto: bf16 on CUDA, fp32 elsewhere (bf16 on the CPU shows bf16 rounding there)")
    parser.add_argument("--budget-s", type=float, default=900,
                        help="skip measurements that would run past this (building and compiling come on top)")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--name", default="generation")
    args = parser.parse_args(argv)
    args.device = args.device or ("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    if args.device.startswith("cuda"):
        avoid_cudnn_attention()  # as the app's loader does (build() does it too), before the flag is recorded
    args.page_tokens = args.page_tokens or (24 if args.tiny else 1500)
    args.steps = args.steps or (12 if args.tiny else 128)
    args.batches = [int(b) for b in (args.batches or ("1,4" if args.tiny else "1,8,32")).split(",")]
    args.job_pages = args.job_pages or (6 if args.tiny else 64)
    args.compile = False if args.compile == "none" else args.compile
    deadline = time.perf_counter() + args.budget_s
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "CPU"
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": f"{device_name} ({args.device})", "torch": torch.__version__,
        "transformers": metadata.version("transformers"), "cpu_threads": torch.get_num_threads(),
        "cudnn_attention": args.device.startswith("cuda") and torch.backends.cuda.cudnn_sdp_enabled(),
        "args": {k: (_shown(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "models": [],
    }
    for key in args.models.split(","):
        print(f"[{key}] measuring", flush=True)
        try:
            results["models"].append(measure(key, args, deadline))
        except Exception as error:  # noqa: BLE001 - one architecture failing must not lose the others
            import traceback

            traceback.print_exc()
            results["models"].append({"model": key, "error": f"{type(error).__name__}: {error}"})
        _write(results, args)  # after every model: a run cut short keeps what it measured
    print(markdown(results))
    return results


def _shown(path: Path) -> str:
    """A path as the results file records it: relative to the repository where it lies inside."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return path.name


def _write(results: dict, args) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(results, indent=2))
    (args.out / f"{args.name}.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
