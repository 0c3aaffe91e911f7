"""The decoding benchmark's CPU smoke run (bench/generation.py --tiny): it runs end to end, measures
both paths side by side, and in fp32 the fast path's greedy tokens equal generate's everywhere."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def test_tiny_benchmark_measures_both_paths_and_they_agree(tmp_path):
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import generation
    finally:
        sys.path.remove(str(REPO / "bench"))
    results = generation.main(["--tiny", "--out", str(tmp_path), "--name", "smoke"])
    saved = json.loads((tmp_path / "smoke.json").read_text())
    assert saved["models"] == json.loads(json.dumps(results["models"]))
    assert [m["model"] for m in saved["models"]] == ["dots_ocr", "qwen2_vl_2b", "qwen3_vl_2b"]
    for model in saved["models"]:
        assert "error" not in model, model
        assert model["skipped"] == []
        assert model["dtype"] == "float32" and model["page_px"] == [1654, 2339]  # A4 at 200 dpi
        assert model["generate"]["tokens"] == model["fast"]["tokens"] == 24  # the end tokens never win
        assert model["divergence"]["fast_vs_generate_batch1"] is None
        assert model["fast"]["mode"] == "eager" and "batched static-cache decoding" in model["fast"]["path"]
        for side in ("generate", "fast"):
            assert [b["rows"] for b in model[side]["batches"]] == [1, 4]
            assert all(b["rows_diverging_from_fast_batch1"] == 0 for b in model[side]["batches"])
            assert all(b["tokens"] == 12 and b["decode_tokens_per_s"] > 0 for b in model[side]["batches"])
        assert model["fast"]["batches"][1]["max_rows_busy"] == 4  # four pages decoded as one batch
        if model["model"] == "dots_ocr":  # --full-models: only dots.ocr runs the many-page job
            assert model["fast"]["job"]["pages"] == 6 and model["fast"]["job"]["pages_per_s"] > 0
        else:
            assert "job" not in model["fast"]
        # Parsing and drawing cost what a real page costs: the classic engine's reading of it.
        assert model["app_overhead"]["answer"].startswith("classic engine")
        assert model["app_overhead"]["elements"] > 20
    table = (tmp_path / "smoke.md").read_text()
    assert "| model | path | prefill s | ms/token | page s | tok/s b1 | tok/s b4 | pages/s (job) |" in table
    assert table.count("| fast (eager) |") == 3 and table.count("| generate |") == 3
    assert "6 pages" in table.split("| dots_ocr | fast")[1].split("\n")[0]


def test_real_size_builds_have_the_published_parameter_counts():
    """What the GPU run measures: the architectures at their published sizes (built on the meta
    device here: no memory, no weights), and the A4 page's visual tokens as the app sends them."""
    import torch

    sys.path.insert(0, str(REPO / "bench"))
    try:
        import generation
    finally:
        sys.path.remove(str(REPO / "bench"))
    from pipelines import get_spec, load_document
    from pipelines.engines.hf_inputs import CHAT_TEMPLATE, page_inputs
    from pipelines.families import ImageLimits, get_family

    page = load_document(generation.SOURCE, dpi=200, pages="1").pages[0]
    expected = {  # parameters (dots.ocr: the checkpoint's 643 tensors), visual tokens of the page
        "dots_ocr": (3_039_179_264, 4956), "qwen2_vl_2b": (2_208_985_600, 1260), "qwen3_vl_2b": (2_127_532_032, 3796),
    }
    for key, (parameters, visual) in expected.items():
        loaded = generation.build(key, False, "meta", torch.bfloat16)
        assert sum(p.numel() for p in loaded.model.parameters()) == parameters, key
        request = get_family(get_spec(key).family).request(generation.MODES[key], *page.size, ImageLimits())
        inputs = page_inputs(loaded.processor, CHAT_TEMPLATE, page.image, request.prompt, request.system,
                             request.model_size, request.processor_kwargs)
        assert int((inputs.tensors["input_ids"] == loaded.model.config.image_token_id).sum()) == visual, key


def test_near_tie_measures_the_top_two_logits_where_the_paths_split():
    """What tells rounding from a fault when the paths diverge in bf16 on a GPU: the gap between
    generate's top two logits at that step, in units of the dtype's spacing there."""
    import torch

    sys.path.insert(0, str(REPO / "bench"))
    try:
        import generation
    finally:
        sys.path.remove(str(REPO / "bench"))
    from pipelines import get_spec, load_document
    from pipelines.engines.hf_inputs import CHAT_TEMPLATE, page_inputs
    from pipelines.families import ImageLimits, get_family

    loaded = generation.build("qwen2_vl_2b", True, "cpu", torch.float32)
    page = load_document(generation.SOURCE, dpi=60, pages="1").pages[0]
    request = get_family(get_spec("qwen2_vl_2b").family).request("text_only", *page.size,
                                                                   ImageLimits(*generation.TINY_PIXELS))
    inputs = page_inputs(loaded.processor, CHAT_TEMPLATE, page.image, request.prompt, request.system,
                         request.model_size, request.processor_kwargs)
    tie = generation.near_tie(loaded, inputs, 3)
    with torch.inference_mode():
        out = loaded.model.generate(**inputs.tensors, max_new_tokens=4, min_new_tokens=4, do_sample=False,
                                    output_logits=True, return_dict_in_generate=True)
    top = out.logits[3][0].float().topk(2).values.tolist()
    assert tie["step"] == 3 and tie["top1"] == top[0] and tie["top2_gap"] == top[0] - top[1] >= 0
    assert tie["dtype_spacing"] == torch.finfo(torch.float32).eps * 2.0 ** math.floor(math.log2(abs(top[0])))
    assert tie["gap_in_spacings"] == tie["top2_gap"] / tie["dtype_spacing"]
