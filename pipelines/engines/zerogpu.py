"""ZeroGPU on a Hugging Face Space: a GPU is attached only while a function decorated with
`spaces.GPU` runs. The transformers engine's generation call is that function, with a duration
sized to its token budget. Where the `spaces` package is absent, or the Space has no ZeroGPU
hardware, the decorator changes nothing (spaces.GPU returns the function itself there).

Not yet verified on ZeroGPU hardware: the tests only show that the app starts with `spaces`
installed and that decorated calls still run on the CPU.
"""
from __future__ import annotations

from typing import Callable, TypeVar

try:
    import spaces
except ImportError:  # not on a Space: nothing to lease
    spaces = None

F = TypeVar("F", bound=Callable)
# Seconds of GPU a generation call asks for: a start-up allowance plus a pessimistic decode rate
# (a 3B model on a ZeroGPU slice writes far more than 20 tokens a second), capped at the quota's
# usual per-call limit.
BASE_S, TOKENS_PER_S, MAX_S = 20, 20, 300


def generation_seconds(max_new_tokens: int) -> int:
    return int(min(MAX_S, BASE_S + max_new_tokens / TOKENS_PER_S))


def on_gpu(function: F) -> F:
    """`spaces.GPU` with a duration from the call's `max_new_tokens` argument (the engine's
    _generate(self, loaded, inputs, max_new_tokens, ...))."""
    if spaces is None:
        return function
    return spaces.GPU(function, duration=lambda self, loaded, inputs, max_new_tokens, *rest, **hooks:
                      generation_seconds(max_new_tokens))
