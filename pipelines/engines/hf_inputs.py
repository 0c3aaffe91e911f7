"""Turning a page image and a prompt (or a chat) into model inputs, per checkpoint convention.

Most checkpoints ship a chat template: the page goes in the first user turn, before the text. A few
are prompted their own way:
- GOT-OCR2 has no chat template; its processor writes the prompt itself (`format=True` for
  formatted output, `box=` for a region);
- Florence-2 is encoder-decoder and is prompted with a task token such as `<OCR>`;
- DeepSeek-OCR-2 takes a plain prompt that starts with its `<image>` placeholder.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ..conversation import normalise_conversation
from ..errors import PipelineError

CHAT_TEMPLATE = "chat_template"
GOT = "got_ocr2"
FLORENCE = "florence2"
DEEPSEEK_OCR = "deepseek_ocr2"
PROMPT_STYLES = {"got_ocr2": GOT, "florence2": FLORENCE, "deepseek_ocr2": DEEPSEEK_OCR}


@dataclass
class ModelInputs:
    tensors: Any  # BatchFeature for model.generate
    seen_size: tuple[int, int] | None  # (width, height) of the page as the model saw it, when known

    @property
    def prompt_tokens(self) -> int:
        return int(self.tensors["input_ids"].shape[-1])


def prompt_style(model_type: str, processor) -> str:
    style = PROMPT_STYLES.get(model_type)
    if style is None and not getattr(processor, "chat_template", None):
        raise PipelineError(
            "unsupported_model",
            f"Model type {model_type!r} has no chat template and no known prompt convention.",
        )
    return style or CHAT_TEMPLATE


def can_chat(style: str) -> bool:
    return style == CHAT_TEMPLATE


def page_inputs(processor, style: str, image: Image.Image, prompt: str, system: str | None = None,
                model_size: tuple[int, int] = (0, 0), processor_kwargs: dict | None = None) -> ModelInputs:
    """Inputs for one page and one prompt; the page is resized to model_size where the processor allows.

    processor_kwargs go to the processor call (GOT-OCR2: format=True, box=[x1, y1, x2, y2] in page
    pixels). An empty prompt sends the image alone (LightOnOCR).
    """
    extra = dict(processor_kwargs or {})
    if style == GOT:
        # GOT's processor writes the whole prompt itself from format= and box=.
        tensors = processor(images=image, return_tensors="pt", **extra)
        return ModelInputs(tensors, _seen_size(processor, tensors))
    if style == FLORENCE:
        tensors = processor(text=prompt, images=image, return_tensors="pt", **extra)
        return ModelInputs(tensors, _seen_size(processor, tensors))
    if style == DEEPSEEK_OCR:
        image_token = getattr(processor, "image_token", "<image>")
        text = prompt if image_token in prompt else f"{image_token}\n{prompt}"
        tensors = processor(images=image, text=text, return_tensors="pt", **extra)
        return ModelInputs(tensors, _seen_size(processor, tensors))
    image, budget = fit_pixel_budget(processor, image, model_size)
    content: list[dict] = [{"type": "image", "image": image}]
    if prompt:
        content.append({"type": "text", "text": prompt})
    messages: list[dict] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": content})
    tensors = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt",
        processor_kwargs={**budget, **extra},
    )
    return ModelInputs(tensors, _seen_size(processor, tensors))


def chat_inputs(processor, image: Image.Image, messages: list[dict],
                model_size: tuple[int, int] = (0, 0)) -> ModelInputs:
    """The whole conversation through the chat template, the page in the first user turn.

    User text is sanitised: a control token typed by a user (e.g. `<|image_pad|>`) is encoded as
    plain text (transformers >= 5.24), or removed with older releases, and cannot break the
    prompt's structure.
    """
    conversation = normalise_messages(messages)
    sanitise = "sanitize_control_tokens" in inspect.signature(processor.apply_chat_template).parameters
    if not sanitise:
        _remove_control_tokens(conversation, processor.tokenizer)
    image, budget = fit_pixel_budget(processor, image, model_size)
    first_user = next(i for i, m in enumerate(conversation) if m["role"] == "user")
    conversation[first_user]["content"] = [{"type": "image", "image": image},
                                           *conversation[first_user]["content"]]
    tensors = processor.apply_chat_template(
        conversation, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt",
        processor_kwargs=budget, **({"sanitize_control_tokens": True} if sanitise else {}),
    )
    return ModelInputs(tensors, _seen_size(processor, tensors))


def _remove_control_tokens(conversation: list[dict], tokenizer) -> None:
    special = {str(t) for t in tokenizer.all_special_tokens}
    special |= {t.content for t in getattr(tokenizer, "added_tokens_decoder", {}).values() if t.special}
    ordered = sorted((t for t in special if t), key=len, reverse=True)
    for message in conversation:
        for part in message["content"]:
            for token in ordered:
                part["text"] = part["text"].replace(token, "")


def normalise_messages(messages: list[dict]) -> list[dict]:
    """Messages -> chat-template messages holding their text parts (checked once, in
    pipelines.conversation)."""
    return [{"role": m["role"], "content": [{"type": "text", "text": m["content"]}]}
            for m in normalise_conversation(messages)]


def fit_pixel_budget(processor, image: Image.Image, model_size: tuple[int, int]) -> tuple[Image.Image, dict]:
    """Make a pixel-budget processor (Qwen-VL style) see the page at exactly model_size.

    Such processors round the page to a multiple of patch x merge within [min, max] pixels. A page
    already at model_size, with a budget around its area, passes through unchanged: the size the
    family expects boxes in is the size the model sees. (GLM-4V's processors count an image as
    temporal_patch_size frames against the budget, hence the upper bound.)
    """
    width, height = model_size
    image_processor = getattr(processor, "image_processor", None)
    size = getattr(image_processor, "size", None)
    budget_based = (
        size is not None and "shortest_edge" in size and "longest_edge" in size
        and getattr(image_processor, "merge_size", None) is not None
    )
    if not budget_based or width <= 0 or height <= 0:
        return image, {}
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BICUBIC)
    frames = int(getattr(image_processor, "temporal_patch_size", 1) or 1)
    return image, {"size": {"shortest_edge": width * height, "longest_edge": width * height * frames}}


def _seen_size(processor, tensors) -> tuple[int, int] | None:
    """The (width, height) the processor resized the page to, where the inputs tell it."""
    if "image_grid_thw" in tensors:
        _, grid_h, grid_w = (int(v) for v in tensors["image_grid_thw"][0])
        patch = _patch_size(getattr(processor, "image_processor", None))
        if patch:
            return grid_w * patch, grid_h * patch
    if "image_sizes" in tensors:  # Pixtral-style: [height, width] after resizing
        height, width = (int(v) for v in tensors["image_sizes"][0])
        return width, height
    return None


def _patch_size(image_processor) -> int | None:
    patch = getattr(image_processor, "patch_size", None)
    if isinstance(patch, dict):
        patch = patch.get("height")
    return int(patch) if patch else None
