"""Vision attention over images packed back to back: one attention block per image, no S x S mask.

The vision tower sees every image of a batch as one sequence of S patches. Patches may only attend
within their own image, i.e. attention is block-diagonal. The published remote code paints that as
a dense [1, S, S] mask (5,000 patches on an A4 page: 25 M entries per layer, plus an [heads, S, S]
score matrix on its eager path). Here each image is attended on its own instead:
- flash-attn's varlen kernel when it is installed and requested (one call, `cu_seqlens` boundaries);
- otherwise `torch.nn.functional.scaled_dot_product_attention` once per image with `attn_mask=None`,
  which lets torch pick its flash / memory-efficient kernels, none of which materialise L x L.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import torch
import torch.nn.functional as F


@lru_cache(maxsize=1)
def _flash_varlen() -> Callable | None:
    try:
        from flash_attn import flash_attn_varlen_func
    except ImportError:
        return None
    return flash_attn_varlen_func


def segment_lengths(cu_seqlens: torch.Tensor) -> list[int]:
    """Patch counts per image from cumulative boundaries [0, n1, n1 + n2, ...]."""
    return (cu_seqlens[1:] - cu_seqlens[:-1]).tolist()


def per_image_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
    """Attention of [S, heads, head_dim] q/k/v, each image attending only to itself."""
    outputs = []
    for start, length in zip(cu_seqlens[:-1].tolist(), segment_lengths(cu_seqlens)):
        # [L, H, D] -> [1, H, L, D]: sdpa's layout; the views stay strided, sdpa accepts that.
        qi, ki, vi = (t[start : start + length].transpose(0, 1).unsqueeze(0) for t in (q, k, v))
        out = F.scaled_dot_product_attention(qi, ki, vi, attn_mask=None, dropout_p=0.0, is_causal=False)
        outputs.append(out.squeeze(0).transpose(0, 1))
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=0)


def block_diagonal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor, implementation: str | None
) -> torch.Tensor:
    """Block-diagonal attention of packed images; returns [S, heads, head_dim] like q."""
    flash = _flash_varlen() if (implementation or "").startswith("flash_attention") else None
    if flash is not None and q.is_cuda:
        max_len = max(segment_lengths(cu_seqlens))
        cu = cu_seqlens.to(device=q.device, dtype=torch.int32)
        return flash(q, k, v, cu, cu, max_len, max_len, causal=False)
    # sdpa, eager and flex requests all land here: every one of them would otherwise need the mask.
    return per_image_sdpa(q, k, v, cu_seqlens)


__all__ = ["block_diagonal_attention", "per_image_sdpa", "segment_lengths"]
