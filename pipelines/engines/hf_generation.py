"""Greedy generation with transformers: whole answers with timings, streamed text, early stops.

Two paths give the same tokens: `decode` (the fast path: static KV cache, compiled steps, pages of
all callers batched; see fast_decode and batcher) for decoder-only models, and `generate`
(transformers' own loop) for the rest and as the reference the fast path is tested against.
"""
from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass
from typing import Callable

from ..errors import PipelineError
from .batcher import STOPPED, TIME_LIMIT, Batcher, DecodeRequest
from .fast_decode import Decoder, Ineligible
from .hf_inputs import ModelInputs
from .hf_loading import LoadedModel


# Decode shapes compiled at load on CUDA (rows, cache columns): one page of about 5,000 visual
# tokens (A4 at 200 dpi for dots.ocr) while its answer grows to 1,500+ tokens.
DEFAULT_WARM_UP = ((1, 6144), (1, 8192))


@dataclass(frozen=True)
class FastDecoding:
    batcher: Batcher | None  # None: this model runs transformers' generate
    note: str  # which path runs and why, for people (Models tab, benchmarks)
    warm_up_s: float = 0.0


def start_fast_decoding(loaded: LoadedModel, decoding: str = "fast", compile: bool | str = "auto",
                        max_batch: int | None = None, warm_up: tuple[tuple[int, int], ...] | None = None,
                        name: str = "chatvlmllm-decode") -> FastDecoding:
    """A batcher for this model, with its common decode shapes compiled now (not in a user's page).

    decoding: "fast" (the fast path where the model allows it, else generate, saying why),
    "generate", or "auto" (the engine's default): transformers' generate, because the fast path is
    not yet verified on a GPU (no committed GPU run of bench/generation.py) and was 6-10% slower per
    token than generate at real widths on the CPU. max_batch: rows decoded together (default 32 on
    CUDA, 4 on CPU).
    """
    import torch

    if decoding == "generate":
        return FastDecoding(None, "transformers generate (chosen)")
    if decoding == "auto":
        return FastDecoding(None, "transformers generate (default; the batched fast path is opt-in, "
                                  "CHATVLMLLM_DECODING=fast, not yet verified on a GPU)")
    config = _greedy_config(loaded, 1)
    try:
        decoder = Decoder(loaded.model, eos_ids=_as_set(config.eos_token_id), pad_id=int(config.pad_token_id),
                          repetition_penalty=config.repetition_penalty, compile=compile)
    except Ineligible as why:
        return FastDecoding(None, f"transformers generate ({why})")
    batcher = Batcher(decoder, max_batch or (32 if loaded.device.startswith("cuda") else 4), name=name)
    warm_up_s = 0.0
    if decoder.compile:
        started = time.perf_counter()
        prompt = torch.tensor([loaded.processor.tokenizer.encode("Warm up.")], device=loaded.device)
        for rows, columns in warm_up or DEFAULT_WARM_UP:
            batcher.warm_up(rows, columns, prompt)
        warm_up_s = time.perf_counter() - started
    mode = {"inductor": "torch.compile", "graphs": "CUDA graphs", "eager": "uncompiled"}[decoder.mode]
    if decoder.compile_error:
        mode += f"; {decoder.compile_error}"
    return FastDecoding(batcher, f"batched static-cache decoding ({mode}), up to {batcher.max_rows} rows",
                        warm_up_s)


@dataclass(frozen=True)
class Generation:
    text: str  # new tokens only; end-of-turn tokens removed
    generated: int  # tokens the model produced, the end-of-sequence token included
    truncated: bool  # ended by max_new_tokens, not by an end-of-sequence token
    first_token_s: float  # from the call to the first token's logits (prefill)
    generate_s: float
    stopped_by: str | None = None  # STOPPED or TIME_LIMIT when ended early
    token_ids: tuple[int, ...] = ()  # the generated tokens, as the model chose them


def generate(loaded: LoadedModel, inputs: ModelInputs, max_new_tokens: int, keep_special_tokens: bool = False,
             on_text: Callable[[str], None] | None = None, stop: threading.Event | None = None,
             time_limit_s: float | None = None) -> Generation:
    """Greedy generation. Special tokens are decoded only where they carry the answer (boxes).

    on_text receives the text as it is generated; stop (an event) or time_limit_s end it early.
    """
    import torch
    from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

    model = loaded.model
    config = _greedy_config(loaded, max_new_tokens)
    end_ids = _end_ids(loaded, config)
    clock = _FirstTokenClock()
    started = time.perf_counter()
    deadline = started + time_limit_s if time_limit_s else None
    stopped_by: list[str] = []

    class StopEarly(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            if not stopped_by:
                if stop is not None and stop.is_set():
                    stopped_by.append(STOPPED)
                elif deadline is not None and time.perf_counter() > deadline:
                    stopped_by.append(TIME_LIMIT)
            return torch.full((input_ids.shape[0],), bool(stopped_by), dtype=torch.bool, device=input_ids.device)

    streamer = _TextCallback(loaded, end_ids, keep_special_tokens, on_text) if on_text else None
    try:
        with torch.inference_mode():
            output = model.generate(
                **_on_device(loaded, inputs), generation_config=config, streamer=streamer,
                logits_processor=LogitsProcessorList([clock]), stopping_criteria=StoppingCriteriaList([StopEarly()]),
            )
    except torch.OutOfMemoryError as error:
        raise _out_of_memory(loaded) from error
    generate_s = time.perf_counter() - started
    sequence = output[0].tolist()
    # Decoder-only models return prompt + answer; encoder-decoder ones the decoder's start + answer.
    prompt_length = 1 if model.config.is_encoder_decoder else inputs.prompt_tokens
    new_ids = sequence[prompt_length:]
    eos_ids = _as_set(config.eos_token_id)
    return Generation(
        text=decode(loaded, new_ids, end_ids, keep_special_tokens),
        generated=len(new_ids),
        # At the limit, an end token is only natural if generation does not force one there (BART).
        truncated=len(new_ids) >= max_new_tokens and (
            not new_ids or new_ids[-1] not in eos_ids or getattr(config, "forced_eos_token_id", None) is not None),
        first_token_s=(clock.at - started) if clock.at is not None else generate_s,
        generate_s=generate_s,
        stopped_by=stopped_by[0] if stopped_by else None,
        token_ids=tuple(new_ids),
    )


def decode_batched(batcher: Batcher, loaded: LoadedModel, inputs: ModelInputs, max_new_tokens: int,
                   keep_special_tokens: bool = False, on_text: Callable[[str], None] | None = None,
                   stop: threading.Event | None = None, time_limit_s: float | None = None) -> Generation:
    """What `generate` returns, through the model's batcher: this prompt decodes alongside the others."""
    import torch

    config = _greedy_config(loaded, max_new_tokens)
    end_ids = _end_ids(loaded, config)
    text = _TextCallback(loaded, end_ids, keep_special_tokens, on_text) if on_text else None
    started = time.perf_counter()
    request = DecodeRequest(
        tensors=_on_device(loaded, inputs), max_new_tokens=max_new_tokens, on_tokens=text.add if text else None,
        stop=stop, time_limit_s=time_limit_s, submitted=started,
    )
    try:
        batcher.submit(request)
    except torch.OutOfMemoryError as error:
        raise _out_of_memory(loaded) from error
    if text:
        text.end()
    new_ids = request.tokens
    return Generation(
        text=decode(loaded, new_ids, end_ids, keep_special_tokens),
        generated=len(new_ids),
        truncated=bool(new_ids) and len(new_ids) >= max_new_tokens and new_ids[-1] not in _as_set(config.eos_token_id),
        first_token_s=(request.first_token_at or request.finished_at) - started,
        generate_s=request.finished_at - started,
        stopped_by=request.stopped_by,
        token_ids=tuple(new_ids),
    )


def decode(loaded: LoadedModel, ids: list[int], drop: set[int], keep_special_tokens: bool) -> str:
    """Kept special tokens (boxes, locations) stay in the text; end, pad and start tokens never do."""
    kept = [i for i in ids if i not in drop]
    return loaded.processor.tokenizer.decode(kept, skip_special_tokens=not keep_special_tokens).strip()


class _TextCallback:
    """A transformers streamer that hands each new piece of the answer to a callback, token by token.

    The tokens since the last newline are decoded together (a token's text can depend on its
    neighbours), and text ending in an incomplete UTF-8 character waits for the next token.
    """

    def __init__(self, loaded: LoadedModel, drop: set[int], keep_special_tokens: bool,
                 on_text: Callable[[str], None]):
        self.tokenizer = loaded.processor.tokenizer
        self.drop, self.skip_special_tokens, self.on_text = drop, not keep_special_tokens, on_text
        self.line: list[int] = []
        self.sent = 0
        self.prompt_seen = False

    def put(self, value) -> None:  # transformers' streamer interface
        if not self.prompt_seen:  # the first call carries the prompt (or the decoder's start token)
            self.prompt_seen = True
            return
        self.add(value.reshape(-1).tolist())

    def add(self, ids: list[int]) -> None:
        self.line.extend(i for i in ids if i not in self.drop)
        self._send(final=False)

    def end(self) -> None:
        self._send(final=True)

    def _send(self, final: bool) -> None:
        text = self.tokenizer.decode(self.line, skip_special_tokens=self.skip_special_tokens)
        if text.endswith("\ufffd") and not final:
            return
        new = text[self.sent:]
        if text.endswith("\n") or final:
            self.line, self.sent = [], 0
        else:
            self.sent = len(text)
        if new:
            self.on_text(new)


class _FirstTokenClock:
    """A logits processor that only notes when the first token's logits arrive."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self, input_ids, scores):
        if self.at is None:
            self.at = time.perf_counter()
        return scores


def _greedy_config(loaded: LoadedModel, max_new_tokens: int):
    config = copy.deepcopy(loaded.model.generation_config)
    # Greedy: the checkpoint's sampling settings would only trigger warnings.
    config.do_sample = False
    config.num_beams = 1
    config.temperature = config.top_p = config.top_k = None
    config.max_new_tokens = max_new_tokens
    config.max_length = None
    tokenizer = loaded.processor.tokenizer
    if config.eos_token_id is None:
        config.eos_token_id = tokenizer.eos_token_id
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return config


def _end_ids(loaded: LoadedModel, config) -> set[int]:
    tokenizer = loaded.processor.tokenizer
    ids = _as_set(config.eos_token_id) | _as_set(config.pad_token_id) | _as_set(config.bos_token_id)
    ids |= _as_set(getattr(config, "decoder_start_token_id", None))
    ids |= _as_set(tokenizer.eos_token_id) | _as_set(tokenizer.bos_token_id) | _as_set(tokenizer.pad_token_id)
    return ids


def _as_set(value) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, int):
        return {value}
    return {int(v) for v in value}


def _on_device(loaded: LoadedModel, inputs: ModelInputs):
    tensors = inputs.tensors.to(loaded.device)
    return tensors.to(loaded.dtype)  # BatchFeature.to(dtype) casts floating tensors only


def _out_of_memory(loaded: LoadedModel) -> PipelineError:
    return PipelineError(
        "out_of_memory",
        f"The {loaded.device} ran out of memory generating this page. Lower max_pixels (fewer visual tokens) "
        "or max_new_tokens, or unload other models.",
    )
