"""DotsVLProcessor: Qwen2-VL's image processor + the Qwen2 tokenizer, `<|imgpad|>` as image token.

The class name is the one the published preprocessor_config.json names ("processor_class":
"DotsVLProcessor"), so AutoProcessor finds this class for the real checkpoint once registered.
Image settings of the checkpoint (preprocessor_config.json): Qwen2VLImageProcessor with patch 14,
temporal_patch_size 1, merge 2, min_pixels 3136, max_pixels 11289600, CLIP mean/std; its
patch layout (channel, time, 14, 14 per row; 2x2 windows consecutive) is what the vision tower reads.
The chat template (chat_template.json) writes `<|img|><|imgpad|><|endofimg|>` per image; each
`<|imgpad|>` becomes rows*cols/4 copies here, one per merged patch.
"""
from __future__ import annotations

from transformers import ProcessorMixin

IMAGE_TOKEN = "<|imgpad|>"

# The checkpoint's chat_template.json, verbatim: list content gets a leading space and no
# <|user|> / <|endofuser|> wrapper (string content does get them), as the model was trained.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{%- for m in messages %}{%- if m.role == 'system' %}{{- '<|system|>' + m.content + '<|endofsystem|>\n' }}"
    "{%- elif m.role == 'user' %}{% if m.content is string %}{{- '<|user|>' + m.content + '<|endofuser|>' }}"
    "{% else %} {% for content in m.content %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|img|><|imgpad|><|endofimg|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|img|><|video_pad|><|endofimg|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}{%- endif %}"
    "{%- elif m.role == 'assistant' %}{{- '<|assistant|>' + m.content }}"
    "{%- if not loop.last %}{{- '<|endofassistant|>' }}{%- endif %}{%- endif %}{%- endfor %}"
    "{%- if messages[-1].role != 'assistant' %}{{- '<|assistant|>' }}{%- endif %}"
)

# Image processor settings of the published preprocessor_config.json.
IMAGE_PROCESSOR_SETTINGS = dict(
    min_pixels=3136, max_pixels=11289600, patch_size=14, temporal_patch_size=1, merge_size=2,
    image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711],
)


class DotsVLProcessor(ProcessorMixin):
    def __init__(self, image_processor=None, tokenizer=None, chat_template: str | None = None) -> None:
        self.image_token = getattr(tokenizer, "image_token", None) or IMAGE_TOKEN
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        super().__init__(image_processor, tokenizer, chat_template=chat_template)

    def replace_image_token(self, image_inputs: dict, image_idx: int, **kwargs) -> str:
        merged = self.image_processor.merge_size**2
        return self.image_token * (int(image_inputs["image_grid_thw"][image_idx].prod()) // merged)

    def num_image_tokens(self, height: int, width: int) -> int:
        """Tokens one image of this size becomes (after smart resize and the 2x2 merge)."""
        patches = self.image_processor.get_number_of_image_patches(height, width)
        return patches // self.image_processor.merge_size**2

    def post_process_image_text_to_text(self, generated_outputs, skip_special_tokens: bool = True, **kwargs):
        return self.tokenizer.batch_decode(generated_outputs, skip_special_tokens=skip_special_tokens, **kwargs)


__all__ = ["CHAT_TEMPLATE", "DotsVLProcessor", "IMAGE_PROCESSOR_SETTINGS", "IMAGE_TOKEN"]
