"""DotsOCRForCausalLM: transformers' Qwen2 language model with the dots vision tower in front.

Checkpoint layout (unchanged from the published safetensors): `model.*` is a plain Qwen2Model,
`lm_head.weight` is untied, `vision_tower.*` is `DotsVisionTransformer`. Image features replace the
embeddings of the `<|imgpad|>` tokens one for one, in order; positions are ordinary 1-D positions
(dots.ocr uses no multimodal rotary), so the language model is exactly Qwen2.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.cache_utils import Cache
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.modeling_utils import slice_logits_to_keep
from transformers.models.qwen2.modeling_qwen2 import Qwen2Model
from transformers.utils import can_return_tuple

from .configuration import DotsOCRConfig, DotsVisionConfig
from .vision import DotsVisionTransformer


class DotsPreTrainedModel(PreTrainedModel):
    config_class = DotsOCRConfig  # explicit: postponed annotations would hide it from transformers
    base_model_prefix = "model"
    input_modalities = ["image", "text"]
    supports_gradient_checkpointing = True
    _no_split_modules = ["Qwen2DecoderLayer", "DotsVisionBlock"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # Decode steps are plain Qwen2 (the vision tower only runs at prefill, which is not compiled).
    _can_compile_fullgraph = True


def images_per_sample(input_ids: torch.Tensor, image_grid_thw: torch.Tensor, image_token_id: int, merge: int) -> list[int]:
    """How many of the (ordered) images belong to each row of input_ids, from its image-token count."""
    tokens_per_image = (image_grid_thw.prod(dim=-1) // merge**2).tolist()
    counts, image = [], 0
    for row_tokens in (input_ids == image_token_id).sum(dim=-1).tolist():
        start = image
        while row_tokens > 0 and image < len(tokens_per_image):
            row_tokens -= tokens_per_image[image]
            image += 1
        if row_tokens != 0:
            raise ValueError("image tokens in input_ids do not match image_grid_thw")
        counts.append(image - start)
    return counts


class DotsOCRForCausalLM(DotsPreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}  # only if tie_word_embeddings

    def __init__(self, config: DotsOCRConfig) -> None:
        super().__init__(config)
        self.model = Qwen2Model(config)
        vision_config = config.vision_config
        if not isinstance(vision_config, DotsVisionConfig):
            raise TypeError(f"vision_config must be a DotsVisionConfig, got {type(vision_config).__name__}")
        self.vision_tower = DotsVisionTransformer(vision_config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_image_features(self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor) -> torch.Tensor:
        """[patches, C*T*14*14] -> [image tokens, hidden_size], in the order the images were given."""
        return self.vision_tower(pixel_values, image_grid_thw)

    def embed_with_images(
        self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None, image_grid_thw: torch.Tensor | None
    ) -> torch.Tensor:
        embeds = self.model.embed_tokens(input_ids)
        if pixel_values is None:
            return embeds
        if image_grid_thw is None:
            raise ValueError("pixel_values need image_grid_thw (the processor returns both)")
        features = self.get_image_features(pixel_values, image_grid_thw)
        mask = input_ids == self.config.image_token_id
        n_tokens = int(mask.sum())
        if n_tokens != features.shape[0]:
            raise ValueError(
                f"The prompt has {n_tokens} image tokens but the images give {features.shape[0]} features; "
                "build the prompt with the processor so each image token is expanded to its grid"
            )
        mask = mask.unsqueeze(-1).expand_as(embeds).to(embeds.device)
        return embeds.masked_scatter(mask, features.to(embeds.device, embeds.dtype))

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError("Pass input_ids (or inputs_embeds with the image features already in place)")
            inputs_embeds = self.embed_with_images(input_ids, pixel_values, image_grid_thw)
        elif pixel_values is not None:
            raise ValueError("pixel_values cannot be combined with inputs_embeds: images are merged via input_ids")
        kwargs.pop("mm_token_type_ids", None)  # the processor may add it; positions here are 1-D
        outputs = self.model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        logits = self.lm_head(slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep))
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(
            loss=loss, logits=logits, cache=outputs.cache, hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def prepare_inputs_for_generation(
        self,
        input_ids: torch.LongTensor,
        pixel_values: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        is_first_iteration: bool | None = False,
        **kwargs,
    ) -> dict:
        model_inputs = super().prepare_inputs_for_generation(input_ids, is_first_iteration=is_first_iteration, **kwargs)
        # Images enter once, at prefill: their features then live in the KV cache, and later steps
        # feed only new tokens (no image tokens to fill). Without a cache every step re-reads the
        # whole prompt, so the pixels must come along each time.
        prefill = is_first_iteration or not kwargs.get("use_cache", True)
        if prefill and model_inputs.get("input_ids") is not None:
            model_inputs["pixel_values"] = pixel_values
            model_inputs["image_grid_thw"] = image_grid_thw
        else:
            model_inputs.pop("pixel_values", None)
            model_inputs.pop("image_grid_thw", None)
        return model_inputs

    def _expand_inputs_for_generation(
        self, expand_size: int = 1, is_encoder_decoder: bool = False, input_ids: torch.LongTensor | None = None,
        **model_kwargs,
    ) -> tuple[torch.LongTensor, dict[str, Any]]:
        # Beams / num_return_sequences repeat each prompt row; pixel_values are packed per image
        # (not per row), so repeat each row's group of images as a whole instead of row-wise.
        pixel_values = model_kwargs.pop("pixel_values", None)
        grid = model_kwargs.pop("image_grid_thw", None)
        if expand_size > 1 and pixel_values is not None and grid is not None and input_ids is not None:
            merge = self.config.vision_config.spatial_merge_size
            per_row = images_per_sample(input_ids, grid, self.config.image_token_id, merge)
            patch_counts = grid.prod(dim=-1).tolist()
            pixel_groups, grid_groups, image, offset = [], [], 0, 0
            for n in per_row:
                rows = sum(patch_counts[image : image + n])
                pixel_groups += [pixel_values[offset : offset + rows]] * expand_size
                grid_groups += [grid[image : image + n]] * expand_size
                image, offset = image + n, offset + rows
            pixel_values, grid = torch.cat(pixel_groups), torch.cat(grid_groups)
        input_ids, model_kwargs = super()._expand_inputs_for_generation(  # type: ignore[misc]
            expand_size=expand_size, is_encoder_decoder=is_encoder_decoder, input_ids=input_ids, **model_kwargs
        )
        model_kwargs.update(pixel_values=pixel_values, image_grid_thw=grid)
        return input_ids, model_kwargs


__all__ = ["DotsOCRForCausalLM", "DotsPreTrainedModel", "images_per_sample"]
