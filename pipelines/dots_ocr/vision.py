"""dots.ocr's vision tower: native-resolution 14 px patches, 2-D rotary attention, 2x2 patch merger.

Module and parameter names mirror the published checkpoint (`vision_tower.patch_embed.patchifier.*`,
`vision_tower.blocks.N.{attn.qkv,attn.proj,mlp.fc1,mlp.fc2,mlp.fc3,norm1,norm2}`,
`vision_tower.post_trunk_norm`, `vision_tower.merger.{ln_q,mlp.0,mlp.2}`), so its safetensors load
as they are.

Input is what Qwen2-VL's image processor emits with temporal_patch_size=1: one row per 14x14
patch (channel-major), the four patches of each 2x2 window consecutive, images back to back;
`grid_thw` holds (frames, rows, cols) of patches per image.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer

from .attention import block_diagonal_attention
from .configuration import DotsVisionConfig

ROPE_THETA = 10000.0


class DotsRMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in float32, round back to the input dtype, then scale: the order the
        # checkpoint was trained with (it matters in bfloat16).
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


class DotsPatchEmbed(nn.Module):
    """14x14 patch -> embed_dim (a stride-14 conv, i.e. one linear map per patch), then RMSNorm."""

    def __init__(self, config: DotsVisionConfig) -> None:
        super().__init__()
        self.num_channels = config.num_channels
        self.temporal_patch_size = config.temporal_patch_size
        self.patch_size = config.patch_size
        self.embed_dim = config.embed_dim
        self.proj = nn.Conv2d(config.num_channels, config.embed_dim, config.patch_size, stride=config.patch_size)
        self.norm = DotsRMSNorm(config.embed_dim, config.rms_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        # Temporal copies of a still image are identical: the model reads the first one.
        patches = pixel_values.view(-1, self.num_channels, self.temporal_patch_size, p, p)[:, :, 0]
        return self.norm(self.proj(patches).view(-1, self.embed_dim))


class DotsVisionEmbeddings(nn.Module):
    """Holds the patch embedding under the name the checkpoint uses (`patch_embed.patchifier`)."""

    def __init__(self, config: DotsVisionConfig) -> None:
        super().__init__()
        self.patchifier = DotsPatchEmbed(config)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.patchifier(pixel_values)


def patch_positions(grid_thw: torch.Tensor, merge: int) -> torch.Tensor:
    """(row, col) of every patch, in the processor's order: 2x2 windows row-major, patches within."""
    positions = []
    for t, h, w in grid_thw.tolist():
        rows = torch.arange(h).view(h // merge, merge, 1, 1).expand(-1, -1, w // merge, merge)
        cols = torch.arange(w).view(1, 1, w // merge, merge).expand(h // merge, merge, -1, -1)
        # (row-block, row-in-block, col-block, col-in-block) -> (row-block, col-block, row-in, col-in)
        rc = torch.stack([rows.permute(0, 2, 1, 3).flatten(), cols.permute(0, 2, 1, 3).flatten()], dim=-1)
        positions.append(rc.repeat(t, 1))
    return torch.cat(positions, dim=0).to(grid_thw.device)


def rotary_cos_sin(grid_thw: torch.Tensor, head_dim: int, merge: int) -> tuple[torch.Tensor, torch.Tensor]:
    """2-D rotary tables, float32 [S, 1, head_dim]: the first quarter of the frequencies encodes the
    row, the second the column, and the pair repeats for the rotate-half partner dimensions."""
    rotary_dim = head_dim // 2
    # Computed per call rather than kept as a buffer: 32 numbers, and it stays float32 even when
    # the model is cast to bfloat16 (as the checkpoint's own float32 buffer did).
    inv_freq = 1.0 / (
        ROPE_THETA ** (torch.arange(0, rotary_dim, 2, dtype=torch.float32, device=grid_thw.device) / rotary_dim)
    )
    positions = patch_positions(grid_thw, merge)
    freqs = (positions.unsqueeze(-1).float() * inv_freq).flatten(1)  # [S, 2 * rotary_dim / 2]
    emb = torch.cat([freqs, freqs], dim=-1).unsqueeze(1)
    return emb.cos(), emb.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    return (xf * cos + torch.cat([-x2, x1], dim=-1) * sin).to(x.dtype)


class DotsVisionAttention(nn.Module):
    def __init__(self, config: DotsVisionConfig) -> None:
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.qkv = nn.Linear(config.embed_dim, 3 * config.embed_dim, bias=config.use_bias)
        self.proj = nn.Linear(config.embed_dim, config.embed_dim, bias=config.use_bias)

    def forward(
        self, hidden: torch.Tensor, cu_seqlens: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> torch.Tensor:
        seq = hidden.shape[0]
        q, k, v = self.qkv(hidden).view(seq, 3, self.num_heads, self.head_dim).unbind(1)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        out = block_diagonal_attention(q, k, v, cu_seqlens, self.config._attn_implementation)
        return self.proj(out.reshape(seq, -1))


class DotsSwiGLU(nn.Module):
    def __init__(self, config: DotsVisionConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.embed_dim, config.intermediate_size, bias=config.use_bias)  # gate
        self.fc3 = nn.Linear(config.embed_dim, config.intermediate_size, bias=config.use_bias)  # up
        self.fc2 = nn.Linear(config.intermediate_size, config.embed_dim, bias=config.use_bias)  # down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.silu(self.fc1(x)) * self.fc3(x))


class DotsVisionBlock(GradientCheckpointingLayer):
    def __init__(self, config: DotsVisionConfig) -> None:
        super().__init__()
        self.norm1 = DotsRMSNorm(config.embed_dim, config.rms_norm_eps)
        self.attn = DotsVisionAttention(config)
        self.norm2 = DotsRMSNorm(config.embed_dim, config.rms_norm_eps)
        self.mlp = DotsSwiGLU(config)

    def forward(
        self, hidden: torch.Tensor, cu_seqlens: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> torch.Tensor:
        hidden = hidden + self.attn(self.norm1(hidden), cu_seqlens, cos, sin)
        return hidden + self.mlp(self.norm2(hidden))


class DotsPatchMerger(nn.Module):
    """Each 2x2 window of patches (consecutive rows) -> one token of the language model's width."""

    def __init__(self, config: DotsVisionConfig) -> None:
        super().__init__()
        self.merged_dim = config.embed_dim * config.spatial_merge_size**2
        self.ln_q = nn.LayerNorm(config.embed_dim, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(self.merged_dim, self.merged_dim), nn.GELU(), nn.Linear(self.merged_dim, config.hidden_size)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.ln_q(x).view(-1, self.merged_dim))


class DotsVisionPreTrainedModel(PreTrainedModel):
    config_class = DotsVisionConfig  # explicit: postponed annotations would hide it from transformers
    base_model_prefix = "vision_tower"
    main_input_name = "pixel_values"
    input_modalities = ["image"]
    supports_gradient_checkpointing = True
    _no_split_modules = ["DotsVisionBlock"]
    _supports_sdpa = True
    _supports_flash_attn = True

    @classmethod
    def _can_set_attn_implementation(cls) -> bool:
        # transformers guesses this from the module source; the attention here reads
        # config._attn_implementation at every forward, so switching at run time is safe.
        return True


class DotsVisionTransformer(DotsVisionPreTrainedModel):
    def __init__(self, config: DotsVisionConfig) -> None:
        super().__init__(config)
        self.spatial_merge_size = config.spatial_merge_size
        self.patch_embed = DotsVisionEmbeddings(config)
        self.blocks = nn.ModuleList([DotsVisionBlock(config) for _ in range(config.num_hidden_layers)])
        self.post_trunk_norm = DotsRMSNorm(config.embed_dim, config.rms_norm_eps) if config.post_norm else None
        self.merger = DotsPatchMerger(config)
        self.post_init()

    def check_grid(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> None:
        merge = self.spatial_merge_size
        if grid_thw.ndim != 2 or grid_thw.shape[-1] != 3:
            raise ValueError(f"grid_thw must be [images, 3] (frames, rows, cols); got shape {tuple(grid_thw.shape)}")
        if bool(((grid_thw[:, 1:] % merge) != 0).any()):
            raise ValueError(f"patch rows and cols must be multiples of {merge}; got grid {grid_thw.tolist()}")
        expected = int(grid_thw.prod(dim=-1).sum())
        if pixel_values.shape[0] != expected:
            raise ValueError(f"pixel_values has {pixel_values.shape[0]} patch rows, grid_thw says {expected}")

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        """[patches, C*T*14*14] pixels -> [patches / 4, hidden_size] features, images in input order."""
        self.check_grid(pixel_values, grid_thw)
        proj = self.patch_embed.patchifier.proj
        hidden = self.patch_embed(pixel_values.to(device=proj.weight.device, dtype=proj.weight.dtype))
        grid_thw = grid_thw.to(hidden.device)
        cos, sin = rotary_cos_sin(grid_thw, self.config.head_dim, self.spatial_merge_size)
        frame_sizes = torch.repeat_interleave(grid_thw[:, 1] * grid_thw[:, 2], grid_thw[:, 0])
        cu_seqlens = F.pad(frame_sizes.cumsum(0, dtype=torch.int32), (1, 0))  # each frame attends to itself
        for block in self.blocks:
            hidden = block(hidden, cu_seqlens, cos, sin)
        if self.post_trunk_norm is not None:
            hidden = self.post_trunk_norm(hidden)
        return self.merger(hidden)


__all__ = ["DotsVisionTransformer", "DotsVisionPreTrainedModel", "patch_positions", "rotary_cos_sin"]
