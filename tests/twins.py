"""Tiny random-weight twins of the vision-language models in the catalogue, built offline in seconds.

Each twin is the REAL transformers architecture (config, model, processor, image processor and
tokenizer classes) at toy sizes: a byte-level BPE tokenizer trained here on a few multilingual
sentences plus the model's own special tokens and chat template, random weights, saved with
`save_pretrained`. Loading one exercises exactly the code path a real checkpoint takes; what it
generates is noise, so tests assert structure, sizes and errors, never words.

    path = build_twin("qwen2_vl_2b", tmp_dir)   # -> tmp_dir / "qwen2_vl_2b", cached
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Callable

# Greetings and pangrams in a few scripts, plus document markup: enough for a few hundred merges.
CORPUS = (
    "The quick brown fox jumps over the lazy dog. Quarterly report on river water quality.",
    "Le vif renard brun saute par-dessus le chien paresseux. Rapport trimestriel sur la qualité de l'eau.",
    "Der schnelle braune Fuchs springt über den faulen Hund. Bericht über die Wasserqualität.",
    "Быстрая коричневая лиса прыгает через ленивую собаку. Отчёт о качестве воды в реке.",
    "敏捷的棕色狐狸跳过了懒狗。河流水质季度报告。文档解析、表格识别与公式识别。",
    "素早い茶色の狐がのろまな犬を飛び越える。文書の解析。",
    "Table 1: <table><tr><td>12.5</td><td>3,400</td></tr></table> $$E = mc^2$$ # Title ## Section",
    "- item one\n- item two\n1. first\n2. second **bold** *italic* `code` [link](http://x.y)",
    '{"bbox": [10, 20, 300, 400], "category": "Text", "text": "Hello"} 0123456789',
)
VOCAB_SIZE = 420  # byte alphabet (256) plus the model's special tokens plus merges

TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
            num_key_value_heads=1, max_position_embeddings=4096)


def train_bpe(special_tokens: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE (vocab, merges) whose first ids are the given special tokens."""
    return _train_bpe(tuple(special_tokens))


@lru_cache(maxsize=None)
def _train_bpe(special_tokens: tuple[str, ...]):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=max(VOCAB_SIZE, 256 + len(special_tokens) + 64), special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tokenizer.train_from_iterator(list(CORPUS) * 4, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    return model["vocab"], [tuple(pair) for pair in model["merges"]]


def qwen_tokenizer(special_tokens: list[str], eos: str, pad: str = "<|endoftext|>", named: dict | None = None):
    from transformers import Qwen2Tokenizer

    vocab, merges = train_bpe(special_tokens)
    extra = {"model_specific_special_tokens": named} if named else {}
    return Qwen2Tokenizer(vocab=vocab, merges=merges, eos_token=eos, pad_token=pad,
                          extra_special_tokens=[t for t in special_tokens if t not in (eos, pad)], **extra)


def token_ids(tokenizer, **names: str) -> dict[str, int]:
    return {key: tokenizer.convert_tokens_to_ids(token) for key, token in names.items()}


# Chat templates: the structure of each checkpoint's own template, trimmed to what these tests use.
QWEN_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' and default_system %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>", "<|box_start|>", "<|box_end|>",
                 "<|object_ref_start|>", "<|object_ref_end|>", "<|quad_start|>", "<|quad_end|>"]


def _qwen_template(default_system: bool) -> str:
    return "{% set default_system = " + ("true" if default_system else "false") + " %}" + QWEN_TEMPLATE


def _qwen_ids(tokenizer) -> dict[str, int]:
    return token_ids(tokenizer, image_token_id="<|image_pad|>", video_token_id="<|video_pad|>",
                     vision_start_token_id="<|vision_start|>", vision_end_token_id="<|vision_end|>")


def _text_config(tokenizer, eos: str, **extra) -> dict:
    return dict(TEXT, vocab_size=len(tokenizer), eos_token_id=tokenizer.convert_tokens_to_ids(eos),
                pad_token_id=tokenizer.pad_token_id, bos_token_id=None, **extra)


def _generation_config(model, tokenizer, eos_tokens: list[str]):
    model.generation_config.eos_token_id = [tokenizer.convert_tokens_to_ids(t) for t in eos_tokens]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.do_sample = False


# Qwen2-VL family: image processors resize to multiples of patch x merge (28 or 32) within a pixel
# budget; the budget here keeps a 1240x1754 page to a few dozen visual tokens.
QWEN_PIXELS = dict(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 48)
# mrope_section must sum to head_dim / 2 (head_dim 16 here).
MROPE = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}


def build_qwen2_vl():
    from transformers import Qwen2VLConfig, Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    tokenizer = qwen_tokenizer(QWEN_SPECIALS, eos="<|im_end|>")
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**QWEN_PIXELS), tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(), chat_template=_qwen_template(True),
    )
    config = Qwen2VLConfig(
        text_config=_text_config(tokenizer, "<|im_end|>", rope_parameters=MROPE),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        **_qwen_ids(tokenizer),
    )
    return config, processor, ["<|im_end|>", "<|endoftext|>"]


def build_qwen2_5_vl():
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    tokenizer = qwen_tokenizer(QWEN_SPECIALS, eos="<|im_end|>")
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**QWEN_PIXELS), tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(), chat_template=_qwen_template(True),
    )
    config = Qwen2_5_VLConfig(
        text_config=_text_config(tokenizer, "<|im_end|>", rope_parameters=MROPE),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                           window_size=56, fullatt_block_indexes=[1]),
        **_qwen_ids(tokenizer),
    )
    return config, processor, ["<|im_end|>", "<|endoftext|>"]


def build_qwen3_vl():
    from transformers import Qwen2VLImageProcessor, Qwen3VLConfig, Qwen3VLProcessor, Qwen3VLVideoProcessor

    tokenizer = qwen_tokenizer(QWEN_SPECIALS, eos="<|im_end|>")
    # Qwen3-VL: patch 16, so images resize to multiples of 32.
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(patch_size=16, min_pixels=32 * 32 * 4, max_pixels=32 * 32 * 48),
        tokenizer=tokenizer, video_processor=Qwen3VLVideoProcessor(patch_size=16),
        chat_template=_qwen_template(False),
    )
    text = _text_config(tokenizer, "<|im_end|>", head_dim=16,
                        rope_parameters={**MROPE, "mrope_interleaved": True})
    config = Qwen3VLConfig(
        text_config=text,
        # A square number of learned position embeddings (interpolated to the grid).
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                           patch_size=16, spatial_merge_size=2, temporal_patch_size=2,
                           num_position_embeddings=64, deepstack_visual_indexes=[0]),
        **_qwen_ids(tokenizer),
    )
    return config, processor, ["<|im_end|>", "<|endoftext|>"]


def build_got_ocr2():
    from transformers import GotOcr2Config, GotOcr2ImageProcessor, GotOcr2Processor

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<imgpad>", "<ref>", "</ref>",
                "<box>", "</box>"]
    tokenizer = qwen_tokenizer(specials, eos="<|im_end|>")
    # The processor always inserts 256 image tokens: the vision tower must emit a 64x64 grid that the
    # projector's two stride-2 convolutions bring to 16x16.
    processor = GotOcr2Processor(image_processor=GotOcr2ImageProcessor(size={"height": 128, "width": 128}),
                                 tokenizer=tokenizer)
    config = GotOcr2Config(
        text_config=dict(_text_config(tokenizer, "<|im_end|>"), model_type="qwen2"),
        vision_config=dict(hidden_size=16, output_channels=16, num_hidden_layers=1, num_attention_heads=2,
                           image_size=128, patch_size=2, mlp_dim=32, window_size=8, global_attn_indexes=[]),
        image_token_index=tokenizer.convert_tokens_to_ids("<imgpad>"), image_seq_length=256,
    )
    return config, processor, ["<|im_end|>", "<|endoftext|>"]


PADDLE_TEMPLATE = (
    "<|begin_of_sentence|>{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] if message['content'] is string "
    "else message['content'][0]['text'] }}\n"
    "{% elif message['role'] == 'user' %}User: "
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>{% elif content['type'] == 'text' %}"
    "{{ content['text'] }}{% endif %}{% endfor %}{% endif %}{{ '\\n' }}"
    "{% else %}Assistant: {{ message['content'] if message['content'] is string "
    "else message['content'][0]['text'] }}<|end_of_sentence|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Assistant: {% endif %}"
)


def build_paddleocr_vl():
    from transformers import PaddleOCRVLConfig, PaddleOCRVLImageProcessor, PaddleOCRVLProcessor

    specials = ["<unk>", "<s>", "</s>", "<|begin_of_sentence|>", "<|end_of_sentence|>", "<|IMAGE_START|>",
                "<|IMAGE_END|>", "<|IMAGE_PLACEHOLDER|>", "<|video_pad|>", "<|LOC_BEGIN|>", "<|LOC_END|>"]
    tokenizer = _fast_tokenizer(specials, bos="<s>", eos="</s>", pad="<unk>", unk="<unk>",
                                named={"image_token": "<|IMAGE_PLACEHOLDER|>"})
    processor = PaddleOCRVLProcessor(
        image_processor=PaddleOCRVLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 48),
        tokenizer=tokenizer, chat_template=PADDLE_TEMPLATE,
    )
    config = PaddleOCRVLConfig(
        text_config=dict(_text_config(tokenizer, "</s>"), head_dim=16, bos_token_id=tokenizer.bos_token_id,
                         rope_parameters=MROPE),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=56, patch_size=14, spatial_merge_size=2),
        **token_ids(tokenizer, image_token_id="<|IMAGE_PLACEHOLDER|>", video_token_id="<|video_pad|>",
                    vision_start_token_id="<|IMAGE_START|>", vision_end_token_id="<|IMAGE_END|>"),
    )
    return config, processor, ["</s>", "<|end_of_sentence|>"]


def _fast_tokenizer(special_tokens: list[str], *, bos=None, eos=None, pad=None, unk=None, named=None, cls=None):
    """A byte-level BPE in the generic fast tokenizer class (checkpoints whose tokenizer is not Qwen's)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab, merges = train_bpe(special_tokens)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=list(merges)))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    extra = {"model_specific_special_tokens": named} if named else {}
    named_tokens = {bos, eos, pad, unk}
    return (cls or PreTrainedTokenizerFast)(
        tokenizer_object=backend, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk,
        extra_special_tokens=[t for t in special_tokens if t not in named_tokens], **extra,
    )


LIGHTON_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<|image_pad|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_lighton_ocr():
    from transformers import LightOnOcrConfig, LightOnOcrProcessor, PixtralImageProcessor

    tokenizer = qwen_tokenizer(
        QWEN_SPECIALS, eos="<|im_end|>",
        named={"image_token": "<|image_pad|>", "image_break_token": "<|vision_pad|>",
               "image_end_token": "<|vision_end|>"},
    )
    tokenizer.add_special_tokens({"extra_special_tokens": ["<|vision_pad|>"]}, replace_extra_special_tokens=False)
    # The image processor's patch is the vision patch times the spatial merge (14 x 2).
    processor = LightOnOcrProcessor(
        image_processor=PixtralImageProcessor(size={"longest_edge": 196}, patch_size={"height": 28, "width": 28}),
        tokenizer=tokenizer, patch_size=14, spatial_merge_size=2, chat_template=LIGHTON_TEMPLATE,
    )
    config = LightOnOcrConfig(
        vision_config=dict(model_type="pixtral", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, head_dim=16, image_size=196, patch_size=14),
        text_config=dict(_text_config(tokenizer, "<|im_end|>"), model_type="qwen3", head_dim=16),
        spatial_merge_size=2, image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
    )
    return config, processor, ["<|im_end|>", "<|endoftext|>"]


GLM_TEMPLATE = (
    "[gMASK]<sop>{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|begin_of_image|><|image|><|end_of_image|>{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def build_glm_ocr():
    from transformers import Glm4vImageProcessor, Glm4vVideoProcessor, Glm46VProcessor, GlmOcrConfig

    specials = ["<|endoftext|>", "[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>",
                "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>",
                "<|end_of_video|>", "<|image|>", "<|video|>"]
    tokenizer = _fast_tokenizer(specials, eos="<|endoftext|>", pad="<|endoftext|>")
    processor = Glm46VProcessor(
        image_processor=Glm4vImageProcessor(size={"shortest_edge": 28 * 28 * 4, "longest_edge": 28 * 28 * 48}),
        tokenizer=tokenizer, video_processor=Glm4vVideoProcessor(), chat_template=GLM_TEMPLATE,
    )
    config = GlmOcrConfig(
        text_config=dict(_text_config(tokenizer, "<|endoftext|>"), head_dim=16,
                         rope_parameters={**MROPE, "partial_rotary_factor": 1.0}),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                           image_size=56, patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        **token_ids(tokenizer, image_token_id="<|image|>", video_token_id="<|video|>",
                    image_start_token_id="<|begin_of_image|>", image_end_token_id="<|end_of_image|>",
                    video_start_token_id="<|begin_of_video|>", video_end_token_id="<|end_of_video|>"),
    )
    return config, processor, ["<|endoftext|>", "<|user|>", "<|observation|>"]


FLORENCE_IMAGE = 64  # the DaViT tower's four stages downsample 32x: a 2x2 grid, plus one pooled token


def build_florence2():
    from transformers import BartTokenizer, CLIPImageProcessor, Florence2Config, Florence2Processor

    task_tokens = ["<od>", "</od>", "<ocr>", "</ocr>", "<cap>", "</cap>", "<ncap>", "</ncap>", "<dcap>", "</dcap>",
                   "<grounding>", "</grounding>", "<seg>", "</seg>", "<sep>", "<region_cap>", "</region_cap>",
                   "<region_to_desciption>", "</region_to_desciption>", "<proposal>", "</proposal>",
                   "<poly>", "</poly>", "<and>"]
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<image>", *task_tokens, *(f"<loc_{i}>" for i in range(1000))]
    tokenizer = _fast_tokenizer(specials, bos="<s>", eos="</s>", pad="<pad>", unk="<unk>",
                                named={"image_token": "<image>"}, cls=BartTokenizer)
    image_processor = CLIPImageProcessor(size={"height": FLORENCE_IMAGE, "width": FLORENCE_IMAGE},
                                         do_center_crop=False, image_seq_length=5)
    processor = Florence2Processor(image_processor=image_processor, tokenizer=tokenizer)
    bart = dict(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                decoder_start_token_id=tokenizer.eos_token_id, forced_eos_token_id=tokenizer.eos_token_id)
    config = Florence2Config(
        text_config=dict(bart, model_type="bart"),
        vision_config=dict(depths=[1, 1, 1, 1], embed_dim=[8, 16, 16, 32], num_heads=[1, 2, 2, 2],
                           num_groups=[1, 2, 2, 2], window_size=2, projection_dim=32, drop_path_rate=0.0,
                           max_position_embeddings=8),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )
    return config, processor, ["</s>"]


def build_deepseek_ocr2():
    from transformers import DeepseekOcr2Config, DeepseekOcr2ImageProcessor, DeepseekOcr2Processor

    bos, eos = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
    specials = [bos, eos, "<｜▁pad▁｜>", "<image>", "<|grounding|>", "<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>"]
    tokenizer = _fast_tokenizer(specials, bos=bos, eos=eos, pad="<｜▁pad▁｜>")
    tokenizer.add_bos_token = True
    # Token counts are fixed by the tower's learned queries: 16x16 for the global view, 12x12 per
    # tile. With SAM patch 4 and its 4x downsampling, a 256 px global view and 192 px tiles give them.
    processor = DeepseekOcr2Processor(
        image_processor=DeepseekOcr2ImageProcessor(size={"height": 256, "width": 256}, tile_size=192,
                                                   min_patches=2, max_patches=3),
        tokenizer=tokenizer, patch_size=4, downsample_ratio=4,
    )
    config = DeepseekOcr2Config(
        vision_config=dict(
            sam_config=dict(hidden_size=16, output_channels=16, num_hidden_layers=1, num_attention_heads=2,
                            image_size=256, patch_size=4, mlp_dim=32, window_size=8, global_attn_indexes=[],
                            downsample_channels=[16, 32]),
            encoder_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                num_key_value_heads=1, vocab_size=8),
        ),
        text_config=dict(_text_config(tokenizer, eos), bos_token_id=tokenizer.bos_token_id, num_hidden_layers=2,
                         mlp_layer_types=["dense", "sparse"], n_routed_experts=4, num_experts_per_tok=2,
                         n_shared_experts=1, moe_intermediate_size=16),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )
    return config, processor, [eos]


BUILDERS: dict[str, Callable] = {
    "qwen2_vl_2b": build_qwen2_vl,
    "qwen2_5_vl_3b": build_qwen2_5_vl,
    "qwen3_vl_2b": build_qwen3_vl,
    "got_ocr2": build_got_ocr2,
    "paddleocr_vl": build_paddleocr_vl,
    "lighton_ocr": build_lighton_ocr,
    "glm_ocr": build_glm_ocr,
    "florence2": build_florence2,
    "deepseek_ocr2": build_deepseek_ocr2,
}
TWIN_KEYS = tuple(BUILDERS)


def build_twin(key: str, root: Path) -> Path:
    """Build (once) the tiny twin of a catalogue model under root/key; returns that directory."""
    import torch
    from transformers import AutoModelForImageTextToText

    directory = Path(root) / key
    if (directory / "config.json").exists():
        return directory
    config, processor, eos_tokens = BUILDERS[key]()
    # Untied output embeddings: with tied ones a one-layer random model echoes the prompt's last
    # token (a newline or the end token) and leaves nothing to parse.
    config.tie_word_embeddings = False
    if hasattr(config, "text_config"):
        config.text_config.tie_word_embeddings = False
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(config)
    _generation_config(model, processor.tokenizer, eos_tokens)
    directory.mkdir(parents=True, exist_ok=True)
    processor.save_pretrained(directory)
    model.save_pretrained(directory)
    return directory


def parameter_count(directory: Path) -> int:
    """Parameters saved in a twin's safetensors files."""
    from math import prod

    from safetensors import safe_open

    total = 0
    for file in Path(directory).glob("*.safetensors"):
        with safe_open(file, "pt") as tensors:
            total += sum(prod(tensors.get_slice(name).get_shape()) for name in tensors.keys())
    return total
