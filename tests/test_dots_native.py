"""dots.ocr as native transformers classes (pipelines.dots_ocr): checkpoint compatibility, a tiny twin
that loads through the Auto classes and generates, block-diagonal vision attention without an
S x S mask, and (when the remote code is at hand) logit parity with the published implementation.

Offline and CPU-only. The optional parity test needs the checkpoint's remote code files
(configuration_dots.py, modeling_dots_ocr.py, modeling_dots_vision.py) in $DOTS_REFERENCE_DIR.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

import torch  # noqa: E402 - a requirement: a missing install fails here
import transformers  # noqa: E402,F401

import torch.nn.functional as F  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, GenerationConfig,
    Qwen2VLImageProcessor, StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer,
)

import pipelines.dots_ocr as dots  # noqa: E402  (registers the classes)

DATA = Path(__file__).parent / "data"
CHECKPOINT_FILES = DATA / "dots_ocr_checkpoint"  # the published small JSON files, unchanged
PARAMS_FILE = DATA / "dots_ocr_checkpoint_params.txt"

SPECIAL_TOKENS = ["<|endoftext|>", "[PAD]", "<|imgpad|>", "<|img|>", "<|endofimg|>", "<|user|>", "<|endofuser|>",
                  "<|assistant|>", "<|endofassistant|>", "<|video_pad|>"]
CORPUS = [
    "Please output the layout information from the PDF image, including each layout element's bbox.",
    '{"bbox": [10, 20, 300, 400], "category": "Text", "text": "Quarterly report"} 0123456789',
    "Extract the text content from this image. Table 1: <table><tr><td>12.5</td></tr></table> $$E=mc^2$$",
]
TINY_TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=1, max_position_embeddings=4096)
TINY_VISION = dict(embed_dim=32, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2)
PROMPT = "Extract the text content from this image."


# ---------------------------------------------------------------- helpers

def read_checkpoint_params() -> dict[str, tuple[int, ...]]:
    params = {}
    for line in PARAMS_FILE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, shape = line.split("\t")
            params[name] = tuple(int(n) for n in shape.split(","))
    return params


def render_page(width: int, height: int, title: str) -> Image.Image:
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([6, 6, width - 6, 28], outline="black", width=2)
    draw.text((10, 10), title, fill="black")
    draw.text((10, 40), "Table 1: 12.5 | 3,400", fill=(30, 30, 200))
    return image


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=360, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(CORPUS * 4, trainer)
    model = json.loads(bpe.to_str())["model"]
    return Qwen2Tokenizer(vocab=model["vocab"], merges=[tuple(m) for m in model["merges"]],
                          eos_token="<|endoftext|>", pad_token="[PAD]",
                          extra_special_tokens=[t for t in SPECIAL_TOKENS if t not in ("<|endoftext|>", "[PAD]")])


def build_dots_twin(directory: Path) -> Path:
    """A tiny random-weight dots.ocr saved like the published checkpoint: the real config keys
    (auto_map to remote code, vision attn_implementation flash_attention_2) on toy sizes."""
    tokenizer = tiny_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    processor = dots.DotsVLProcessor(Qwen2VLImageProcessor(**dots.IMAGE_PROCESSOR_SETTINGS), tokenizer,
                                     chat_template=dots.CHAT_TEMPLATE)
    config = dots.DotsOCRConfig(vocab_size=len(tokenizer), image_token_id=ids["<|imgpad|>"],
                                video_token_id=ids["<|video_pad|>"], pad_token_id=ids["[PAD]"],
                                vision_config=TINY_VISION, **TINY_TEXT)
    torch.manual_seed(0)
    model = dots.DotsOCRForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=[ids["<|endoftext|>"], ids["<|endofassistant|>"]],
                                               pad_token_id=ids["[PAD]"])
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    hub = json.loads((CHECKPOINT_FILES / "config.json").read_text())
    saved = json.loads((directory / "config.json").read_text())
    saved["auto_map"] = hub["auto_map"]
    saved["vision_config"]["attn_implementation"] = hub["vision_config"]["attn_implementation"]
    (directory / "config.json").write_text(json.dumps(saved, indent=2))
    return directory


@pytest.fixture(scope="module")
def twin_dir(tmp_path_factory) -> Path:
    return build_dots_twin(tmp_path_factory.mktemp("dots_twin"))


@pytest.fixture(scope="module")
def twin(twin_dir):
    model, info = AutoModelForCausalLM.from_pretrained(twin_dir, output_loading_info=True)
    return model.eval(), AutoProcessor.from_pretrained(twin_dir), info


@pytest.fixture(scope="module")
def page_inputs(twin):
    _, processor, _ = twin
    image = render_page(200, 150, "Quarterly report")
    messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": PROMPT}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return image, text, processor(images=[image], text=[text], return_tensors="pt")


class CountCalls:
    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = 0
        self.handle = module.register_forward_hook(self.hook)

    def hook(self, *args) -> None:
        self.calls += 1


# ---------------------------------------------------------------- checkpoint compatibility

def test_published_config_loads_natively_without_remote_code():
    config = AutoConfig.from_pretrained(CHECKPOINT_FILES)  # config.json carries auto_map to remote code
    assert type(config) is dots.DotsOCRConfig
    assert type(config.vision_config) is dots.DotsVisionConfig
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads) == (
        1536, 28, 12, 2)
    assert config.rope_parameters["rope_theta"] == 1_000_000
    assert config.image_token_id == 151665 and config.tie_word_embeddings is False
    vision = config.vision_config
    assert (vision.embed_dim, vision.num_hidden_layers, vision.num_attention_heads, vision.intermediate_size) == (
        1536, 42, 12, 4224)
    assert (vision.patch_size, vision.temporal_patch_size, vision.spatial_merge_size) == (14, 1, 2)
    # The checkpoint's "flash_attention_2" is not forced on machines without flash-attn.
    assert vision._attn_implementation is None
    assert "auto_map" not in config.to_dict()


def test_native_model_has_exactly_the_checkpoint_tensors():
    expected = read_checkpoint_params()
    assert len(expected) == 643
    config = AutoConfig.from_pretrained(CHECKPOINT_FILES)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    assert type(model) is dots.DotsOCRForCausalLM
    actual = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    assert sorted(set(expected) - set(actual)) == []  # nothing the checkpoint has goes unread
    assert sorted(set(actual) - set(expected)) == []  # nothing the model needs is missing from it
    assert {n: s for n, s in actual.items() if expected[n] != s} == {}
    assert sum(t.numel() for t in model.state_dict().values()) == 3_039_179_264


def test_published_preprocessor_files_give_the_native_processor(tmp_path):
    for name in ("preprocessor_config.json", "chat_template.json", "config.json"):
        shutil.copy(CHECKPOINT_FILES / name, tmp_path / name)
    tiny_tokenizer().save_pretrained(tmp_path)
    processor = AutoProcessor.from_pretrained(tmp_path)  # "processor_class": "DotsVLProcessor"
    assert type(processor) is dots.DotsVLProcessor
    image_processor = processor.image_processor
    assert (image_processor.patch_size, image_processor.temporal_patch_size, image_processor.merge_size) == (14, 1, 2)
    assert (image_processor.size.shortest_edge, image_processor.size.longest_edge) == (3136, 11289600)
    assert processor.chat_template == dots.CHAT_TEMPLATE
    # A4 at 200 dpi: smart resize to 1652 x 2352 -> 118 x 168 patches -> 4,956 tokens after the 2x2 merge.
    assert processor.num_image_tokens(2339, 1654) == 4956
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]
    rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == f" <|img|><|imgpad|><|endofimg|>{PROMPT}<|assistant|>"


# ---------------------------------------------------------------- tiny twin through the Auto classes

def test_twin_reloads_with_every_tensor_matched(twin, twin_dir):
    model, processor, info = twin
    assert type(model) is dots.DotsOCRForCausalLM and type(processor) is dots.DotsVLProcessor
    assert {k: list(v) for k, v in info.items() if k != "error_msgs" and v} == {}
    assert model.config.vision_config._attn_implementation == "sdpa"
    image_text_model = AutoModelForImageTextToText.from_pretrained(twin_dir)
    assert type(image_text_model) is dots.DotsOCRForCausalLM


def test_image_tokens_match_the_processor_grid(twin, page_inputs):
    model, processor, _ = twin
    image, text, inputs = page_inputs
    assert text == f" <|img|><|imgpad|><|endofimg|>{PROMPT}<|assistant|>"
    t, h, w = inputs["image_grid_thw"][0].tolist()
    assert (t, h, w) == (1, 10, 14)  # 200 x 150 px -> smart resize 196 x 140 -> 14 x 10 patches
    assert inputs["pixel_values"].shape == (t * h * w, 3 * 1 * 14 * 14)
    n_image_tokens = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert n_image_tokens == h * w // 4 == processor.num_image_tokens(image.height, image.width) == 35
    features = model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"])
    assert features.shape == (n_image_tokens, model.config.hidden_size)


def test_twin_generates_and_runs_the_vision_tower_only_at_prefill(twin, page_inputs):
    model, processor, _ = twin
    _, _, inputs = page_inputs
    counter = CountCalls(model.vision_tower)
    try:
        cached = model.generate(**inputs, max_new_tokens=5, do_sample=False, min_new_tokens=5)
        assert counter.calls == 1
        uncached = model.generate(**inputs, max_new_tokens=5, do_sample=False, min_new_tokens=5, use_cache=False)
        assert counter.calls == 1 + 5  # without a cache each step re-reads the whole prompt, image included
        static = model.generate(**inputs, max_new_tokens=5, do_sample=False, min_new_tokens=5,
                                cache_implementation="static")
    finally:
        counter.handle.remove()
    prompt_length = inputs["input_ids"].shape[1]
    assert cached.shape == (1, prompt_length + 5)
    assert torch.equal(cached, uncached) and torch.equal(cached, static)
    assert torch.equal(cached[:, :prompt_length], inputs["input_ids"])


def test_generate_streams_and_honours_stopping_criteria(twin, page_inputs):
    model, processor, _ = twin
    _, _, inputs = page_inputs

    class StopAfter(StoppingCriteria):
        def __init__(self, length: int) -> None:
            self.length = length

        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), input_ids.shape[1] >= self.length, dtype=torch.bool)

    prompt_length = inputs["input_ids"].shape[1]
    streamer = TextIteratorStreamer(processor.tokenizer, skip_prompt=True, skip_special_tokens=False)
    result = {}
    worker = threading.Thread(target=lambda: result.update(out=model.generate(
        **inputs, max_new_tokens=20, min_new_tokens=20, do_sample=False, streamer=streamer,
        stopping_criteria=StoppingCriteriaList([StopAfter(prompt_length + 3)]))))
    worker.start()
    streamed = "".join(streamer)
    worker.join(timeout=60)
    generated = result["out"][0, prompt_length:]
    assert generated.shape == (3,)
    assert streamed == processor.tokenizer.decode(generated, skip_special_tokens=False)


def test_beams_repeat_each_rows_images_as_a_group(twin):
    model, _, _ = twin
    token = model.config.image_token_id
    # Row 0 holds image A (2x2 patches -> 1 token), row 1 images B (2x4 -> 2) and C (2x2 -> 1).
    grid = torch.tensor([[1, 2, 2], [1, 2, 4], [1, 2, 2]])
    pixels = torch.cat([torch.full((4, 588), 0.0), torch.full((8, 588), 1.0), torch.full((4, 588), 2.0)])
    input_ids = torch.tensor([[5, token, 6, 6], [token, token, 6, token]])
    ids, kwargs = model._expand_inputs_for_generation(expand_size=2, input_ids=input_ids, pixel_values=pixels,
                                                      image_grid_thw=grid, attention_mask=torch.ones(2, 4))
    assert torch.equal(ids, input_ids.repeat_interleave(2, dim=0))
    assert kwargs["image_grid_thw"].tolist() == [[1, 2, 2], [1, 2, 2], [1, 2, 4], [1, 2, 2], [1, 2, 4], [1, 2, 2]]
    assert kwargs["pixel_values"][:, 0].tolist() == [0.0] * 8 + ([1.0] * 8 + [2.0] * 4) * 2
    assert kwargs["attention_mask"].shape == (4, 4)


def test_prepare_inputs_passes_pixels_only_at_prefill(twin, page_inputs):
    model, _, _ = twin
    _, _, inputs = page_inputs
    common = dict(pixel_values=inputs["pixel_values"], image_grid_thw=inputs["image_grid_thw"], use_cache=True)
    prefill = model.prepare_inputs_for_generation(inputs["input_ids"], is_first_iteration=True, **common)
    decode = model.prepare_inputs_for_generation(inputs["input_ids"], is_first_iteration=False, **common)
    assert prefill["pixel_values"] is inputs["pixel_values"] and prefill["image_grid_thw"] is inputs["image_grid_thw"]
    assert "pixel_values" not in decode and "image_grid_thw" not in decode


def test_mismatched_image_tokens_are_refused_with_a_clear_error(twin, page_inputs):
    model, _, _ = twin
    _, _, inputs = page_inputs
    ids = inputs["input_ids"].clone()
    ids[ids == model.config.image_token_id] = 6
    with pytest.raises(ValueError, match="0 image tokens but the images give 35 features"):
        model(input_ids=ids, pixel_values=inputs["pixel_values"], image_grid_thw=inputs["image_grid_thw"])


# ---------------------------------------------------------------- vision attention: per image, no S x S

def tiny_vision_tower(width: int = 16, heads: int = 2, layers: int = 1) -> dots.DotsVisionTransformer:
    config = dots.DotsVisionConfig(embed_dim=width, hidden_size=width, intermediate_size=2 * width,
                                   num_hidden_layers=layers, num_attention_heads=heads)
    torch.manual_seed(0)
    return dots.DotsVisionTransformer(config).eval()


def test_vision_attention_calls_sdpa_once_per_image_without_a_mask(monkeypatch):
    tower = tiny_vision_tower(layers=2)
    grid = torch.tensor([[1, 4, 6], [1, 8, 2], [1, 2, 2]])
    pixels = torch.randn(int(grid.prod(-1).sum()), 588)
    calls = []
    real_sdpa = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):
        calls.append((tuple(q.shape), attn_mask))
        return real_sdpa(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    with torch.no_grad():
        out = tower(pixels, grid)
    assert out.shape == (int(grid.prod(-1).sum()) // 4, 16)
    assert [shape for shape, _ in calls] == [(1, 2, 24, 8), (1, 2, 16, 8), (1, 2, 4, 8)] * 2
    assert all(mask is None for _, mask in calls)


def test_vision_features_of_an_image_do_not_depend_on_its_neighbours():
    tower = tiny_vision_tower()
    grid = torch.tensor([[1, 4, 6], [1, 6, 4]])
    pixels = torch.randn(48, 588)
    with torch.no_grad():
        together = tower(pixels, grid)
        alone = torch.cat([tower(pixels[:24], grid[:1]), tower(pixels[24:], grid[1:])])
    assert torch.allclose(together, alone, atol=1e-6)


def test_long_sequence_vision_forward_allocates_nothing_of_size_s_squared():
    from torch.profiler import ProfilerActivity, profile

    tower = tiny_vision_tower()
    grid = torch.tensor([[1, 70, 70]])  # S = 4,900 patches in one image (an A4 page is ~19,800)
    seq = int(grid.prod())
    pixels = torch.randn(seq, 588)
    # CPU flash attention keeps a fixed workspace per thread (0.5 MB here); one thread keeps the
    # measurement about S, not about the machine's core count.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            out = tower(pixels, grid)
    finally:
        torch.set_num_threads(threads)
    assert out.shape == (seq // 4, 16)
    largest = max(event.cpu_memory_usage for event in prof.events())
    # One S x S boolean mask alone is 24 MB; a float mask or score matrix 96 MB per head.
    assert largest < seq * seq // 8, f"largest single allocation {largest} bytes"


# ---------------------------------------------------------------- parity with the published remote code

REFERENCE_DIR = os.environ.get("DOTS_REFERENCE_DIR")


def import_reference(directory: str):
    """The remote code uses package-relative imports; load it as package `dots_reference`."""
    spec = importlib.machinery.ModuleSpec("dots_reference", None, is_package=True)
    package = importlib.util.module_from_spec(spec)
    package.__path__ = [directory]
    sys.modules["dots_reference"] = package
    config = importlib.import_module("dots_reference.configuration_dots")
    modeling = importlib.import_module("dots_reference.modeling_dots_ocr")
    return config.DotsOCRConfig, modeling.DotsOCRForCausalLM


@pytest.mark.skipif(not REFERENCE_DIR, reason="set DOTS_REFERENCE_DIR to the checkpoint's remote code to compare")
@pytest.mark.parametrize("sizes", [[(196, 140)], [(196, 140), (120, 230)]], ids=["one image", "two images"])
def test_logits_match_the_published_implementation(sizes):
    RefConfig, RefModel = import_reference(REFERENCE_DIR)
    text = dict(TINY_TEXT, vocab_size=320, image_token_id=7, video_token_id=8, rope_theta=1000000)
    vision = dict(TINY_VISION, num_hidden_layers=3, attn_implementation="eager")
    torch.manual_seed(0)
    reference = RefModel(RefConfig(vision_config=vision, **text)).eval()
    with torch.no_grad():  # perturb norms and biases so none hides behind ones / zeros
        for parameter in reference.parameters():
            if parameter.dim() == 1:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    native = dots.DotsOCRForCausalLM(dots.DotsOCRConfig(vision_config=vision, **text)).eval()
    native.load_state_dict(reference.state_dict(), strict=True)

    images = [render_page(w, h, f"Page {i}") for i, (w, h) in enumerate(sizes)]
    batch = Qwen2VLImageProcessor(**dots.IMAGE_PROCESSOR_SETTINGS)(images=images, return_tensors="pt")
    ids = [11, 12]
    for tokens in (batch["image_grid_thw"].prod(-1) // 4).tolist():
        ids += [13] + [7] * tokens + [14]
    input_ids = torch.tensor([ids + list(range(20, 40))])
    # The remote tower casts pixels to bfloat16 unless told bf16=False (its own option); compare in fp32.
    reference.vision_tower.forward = lambda x, grid_thw, bf16=False, tower=reference.vision_tower: type(
        tower).forward(tower, x, grid_thw, bf16=False)
    with torch.no_grad():
        ref_logits = reference(input_ids=input_ids, pixel_values=batch["pixel_values"],
                               image_grid_thw=batch["image_grid_thw"], use_cache=False).logits
        our_logits = native(input_ids=input_ids, pixel_values=batch["pixel_values"],
                            image_grid_thw=batch["image_grid_thw"], use_cache=False).logits
    assert (ref_logits - our_logits).abs().max().item() < 1e-4
