"""Configs of dots.ocr / dots.mocr, field for field as the published `config.json` spells them.

The checkpoint's config.json is a flat Qwen2 config (the language model) plus `image_token_id`,
`video_token_id` and a nested `vision_config`; `model_type` is "dots_ocr" for both dots.ocr and
dots.mocr (their config.json files are identical), and the vision config's own type is "dots_vit".
Numbers below are the published values, so `DotsOCRConfig()` describes the real model.
"""
from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig, Qwen2Config
from transformers.configuration_utils import SubConfigSpec


@strict
class DotsVisionConfig(PreTrainedConfig):
    """The 42-block, 1536-wide vision tower and its 2x2 patch merger (output width `hidden_size`)."""

    model_type = "dots_vit"
    base_config_key = "vision_config"

    embed_dim: int = 1536  # width inside the tower
    hidden_size: int = 1536  # width after the merger: the language model's hidden size
    intermediate_size: int = 4224  # SwiGLU inner width
    num_hidden_layers: int = 42
    num_attention_heads: int = 12
    num_channels: int = 3
    patch_size: int = 14
    spatial_merge_size: int = 2
    temporal_patch_size: int = 1
    rms_norm_eps: float = 1e-5
    use_bias: bool = False  # attention and MLP linears; the patch conv and the merger always have bias
    post_norm: bool = True  # RMSNorm after the last block
    initializer_range: float = 0.02
    init_merger_std: float = 0.02
    is_causal: bool = False

    def __post_init__(self, **kwargs):
        # The published vision_config pins "attn_implementation": "flash_attention_2" (and training
        # flags). Taken literally that would demand flash-attn on every machine; the attention
        # backend is chosen at load time instead (`from_pretrained(attn_implementation=...)`).
        kwargs.pop("attn_implementation", None)
        kwargs.pop("gradient_checkpointing", None)
        super().__post_init__(**kwargs)
        if self.embed_dim % self.num_attention_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by {self.num_attention_heads} heads")

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_attention_heads


@strict
class DotsOCRConfig(Qwen2Config):
    """Qwen2 language model (flat fields, as in the checkpoint) plus the vision tower's config."""

    model_type = "dots_ocr"
    sub_configs_defaults = {"vision_config": SubConfigSpec(DotsVisionConfig)}

    # Qwen2 1.5B as published (Qwen2Config's own defaults describe a 7B model).
    vocab_size: int = 151936
    hidden_size: int = 1536
    intermediate_size: int = 8960
    num_hidden_layers: int = 28
    num_attention_heads: int = 12
    num_key_value_heads: int | None = 2
    max_position_embeddings: int = 131072
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False

    vision_config: dict | PreTrainedConfig | None = None
    image_token_id: int = 151665  # <|imgpad|>
    video_token_id: int = 151656  # <|video_pad|> (unused: dots.ocr reads images only)

    def __post_init__(self, **kwargs):
        # The checkpoint states rope_theta 1e6; a bare DotsOCRConfig() must describe the same model.
        if self.rope_parameters is None and "rope_theta" not in kwargs and "rope_scaling" not in kwargs:
            kwargs["rope_theta"] = 1_000_000.0
        # Its auto_map points at remote-code files; this native config must not send a re-saved
        # folder (which holds no such files) back to them.
        kwargs.pop("auto_map", None)
        super().__post_init__(**kwargs)
        if self.vision_config.hidden_size != self.hidden_size:
            raise ValueError(
                f"vision_config.hidden_size ({self.vision_config.hidden_size}) must equal the language model's "
                f"hidden_size ({self.hidden_size}): the merger writes image features into token embeddings"
            )


__all__ = ["DotsOCRConfig", "DotsVisionConfig"]
