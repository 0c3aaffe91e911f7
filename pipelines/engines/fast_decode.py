"""Greedy decoding without `generate`'s per-token overhead: prefill each page alone, then decode many
pages together on a fixed-shape KV cache, one compiled (CUDA-graph) step per token.

Why: at batch 1 `generate` is launch-bound. Each token pays Python work (logits processors,
stopping criteria, cache bookkeeping), a host sync, and hundreds of separate kernel launches. Here
a decode step has fixed shapes (rows x cache columns, both bucketed), so it compiles once per bucket
and replays as a CUDA graph. Everything a step needs (next token, finished rows, lengths) stays on
the device; the host looks every `sync_every` steps.

Rows are independent: each writes its keys and values at its own length, so pages of different
lengths share a batch without padding, and a new page can take a finished row's place.
Output is token-identical to `model.generate` with greedy decoding (tests/test_fast_decode.py).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
# Cache lengths grow along this ladder (x1.5 / x1.33 steps from 1,024 columns): a longer page or
# answer moves its batch to the next rung, so only a handful of shapes are ever compiled.
COLUMN_BUCKETS = tuple(1024 * n for n in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128))


class Ineligible(Exception):
    """This model cannot take the fast path (it falls back to `generate`); the message says why."""


def fast_path_problem(model) -> str | None:
    """Why this model cannot use the fast path, or None when it can."""
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder model"
    text = config.get_text_config()
    if any(kind != "full_attention" for kind in getattr(text, "layer_types", None) or ()):
        return "sliding-window attention layers"
    if getattr(text, "_attn_implementation", None) not in (None, "sdpa", "eager"):
        return f"attention implementation {text._attn_implementation!r} takes no 4-D mask"
    settings = model.generation_config
    unsupported = [name for name, neutral in (
        ("no_repeat_ngram_size", 0), ("bad_words_ids", None), ("suppress_tokens", None),
        ("begin_suppress_tokens", None), ("forced_bos_token_id", None), ("forced_eos_token_id", None),
        ("min_new_tokens", None), ("min_length", 0), ("sequence_bias", None),
        ("encoder_repetition_penalty", 1.0), ("exponential_decay_length_penalty", None),
    ) if getattr(settings, name, neutral) not in (neutral, None, 0, 1.0, [])]
    if unsupported:
        return "generation settings " + ", ".join(unsupported)
    return None


@dataclass
class Prefill:
    """One page's prompt run through the model: its KV cache, first greedy token and positions."""

    keys: list  # per layer, [1, kv_heads, prompt_tokens, head_dim]
    values: list
    first_token: int
    prompt_ids: object  # [prompt_tokens] on the device (for the repetition penalty)
    rope_delta: int  # multimodal RoPE: text after the image sits this far from its index


class SlotCache:
    """KV cache of `rows` x `columns`; each row writes one token per step at its own length.

    Duck-typed to what the decoder layers call (`update`, `get_seq_length`). Rows are pages of
    different lengths, so a row's keys live at columns [0, length) and the attention mask hides
    the rest.
    """

    is_compileable = True

    def __init__(self, rows: int, columns: int, shapes: list[tuple[int, int, int]], dtype, device):
        import torch

        self.rows, self.columns = rows, columns
        self.keys = [torch.zeros((rows, heads, columns, k_dim), dtype=dtype, device=device)
                     for heads, k_dim, _ in shapes]
        self.values = [torch.zeros((rows, heads, columns, v_dim), dtype=dtype, device=device)
                       for heads, _, v_dim in shapes]
        self.lengths = torch.zeros(rows, dtype=torch.long, device=device)
        self.row_ids = torch.arange(rows, device=device)

    def tensors(self) -> list:
        return [*self.keys, *self.values, self.lengths, self.row_ids]

    def update(self, key_states, value_states, layer_idx: int, *args, **kwargs):
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        # Decoding feeds one token per row: write it at that row's own length.
        keys[self.row_ids, :, self.lengths] = key_states[:, :, -1]
        values[self.row_ids, :, self.lengths] = value_states[:, :, -1]
        return keys, values

    def get_seq_length(self, layer_idx: int = 0):
        return self.lengths.max()

    def copy_from(self, other: "SlotCache") -> None:
        """Take every row of a smaller cache (growing to more rows or columns)."""
        for mine, theirs in zip([*self.keys, *self.values], [*other.keys, *other.values]):
            mine[:theirs.shape[0], :, :theirs.shape[2]] = theirs
        self.lengths[:other.rows] = other.lengths

    def fill(self, row: int, prefill: Prefill) -> None:
        length = prefill.keys[0].shape[2]
        for layer, (keys, values) in enumerate(zip(prefill.keys, prefill.values)):
            self.keys[layer][row, :, :length] = keys[0]
            self.values[layer][row, :, :length] = values[0]
        self.lengths[row] = length


@dataclass
class DecodeState:
    """Everything one decode step reads and writes, on the device, in fixed-address tensors."""

    cache: SlotCache
    tokens: object  # [rows] the token each row feeds next
    done: object  # [rows] bool: finished rows feed padding and stay put
    remaining: object  # [rows] tokens each row may still generate
    rope_deltas: object  # [rows]
    seen: object | None  # [rows, vocab] bool, tokens already in the row (repetition penalty)
    column_ids: object  # [columns]
    graph: object | None = None  # the step recorded as a CUDA graph for these tensors ("graphs" mode)

    def tensors(self) -> list:
        extra = [self.seen] if self.seen is not None else []
        return [*self.cache.tensors(), self.tokens, self.done, self.remaining, self.rope_deltas,
                self.column_ids, *extra]


class Decoder:
    """Prefill and batched decode for one loaded decoder-only model (see the module doc).

    compile: how a decode step runs.
    - "inductor" (or True): torch.compile with CUDA graphs ("reduce-overhead"): fused kernels,
      one graph replay per step; compiling takes tens of seconds per shape, so the engine warms
      up its common shapes at load.
    - "graphs": the uncompiled step recorded as a CUDA graph (no fusion, seconds to record).
    - False: uncompiled (the CPU default: there is no launch overhead to remove).
    - "auto": "inductor" on CUDA, else False.
    A failure falls back along inductor -> graphs -> uncompiled; `compile_error` says what failed.
    """

    def __init__(self, model, eos_ids: set[int], pad_id: int, repetition_penalty: float | None,
                 compile: bool | str = "auto", sync_every: int | None = None):
        import torch

        problem = fast_path_problem(model)
        if problem:
            raise Ineligible(problem)
        self.model = model
        self.device = next(model.parameters()).device
        self.eos_ids = frozenset(eos_ids)
        self.eos = torch.tensor(sorted(eos_ids), dtype=torch.long, device=self.device)
        self.pad_id = pad_id
        self.penalty = repetition_penalty if repetition_penalty not in (None, 1.0) else None
        inner = getattr(model, "model", None)
        # Models with multimodal RoPE (Qwen-VL style) keep the text offset after the image here.
        self.multimodal_rope = inner is not None and hasattr(inner, "rope_deltas")
        text = model.config.get_text_config()
        self.vocab_size = text.vocab_size
        self.additive_mask = getattr(text, "_attn_implementation", None) == "eager"
        on_cuda = self.device.type == "cuda"
        if compile == "auto":
            compile = "inductor" if on_cuda else False
        if compile is True:
            compile = "inductor"
        if compile not in (False, None, "inductor", "graphs"):
            raise ValueError(f"compile must be 'auto', 'inductor', 'graphs', True or False, not {compile!r}")
        if compile == "graphs" and not on_cuda:
            raise ValueError("CUDA graphs need a CUDA device")
        self.mode = compile or "eager"  # "inductor", "graphs" or "eager"
        self.compile_error: str | None = None
        self.compile_s = 0.0  # seconds spent compiling and capturing, summed over shapes
        # The host reads new tokens every sync_every steps: on CUDA each read stalls the launch queue;
        # on the CPU steps are synchronous anyway, and reading each token streams the finest text.
        self.sync_every = sync_every or (8 if self.device.type == "cuda" else 1)
        self._step = self._compiled_step() if self.mode == "inductor" else self._decode_step
        self._compiled_shapes: set[tuple[int, int]] = set()
        self.pending_shapes: set[tuple[int, int]] = set()  # met uncompiled: compile when idle
        self._layer_shapes = None  # (per-layer cache shapes, dtype), learnt from the first prefill
        self._graph_pool = None

    @property
    def compile(self) -> bool:
        return self.mode != "eager"

    # -- prefill -------------------------------------------------------------------------------------

    def prefill(self, tensors) -> Prefill:
        """One page's prompt (a BatchFeature on the device) through the model, alone."""
        import torch

        inner = getattr(self.model, "model", None)
        if self.multimodal_rope:
            inner.rope_deltas = None  # computed afresh for this page
        output = self.model(**tensors, use_cache=True, logits_to_keep=1)
        cache = getattr(output, "cache", None) or getattr(output, "past_key_values")
        layers = cache.layers
        prompt_ids = tensors["input_ids"][0]
        logits = self._process(output.logits[:, -1, :].float(), self._seen_from(prompt_ids[None]))
        delta = getattr(inner, "rope_deltas", None) if self.multimodal_rope else None
        return Prefill(
            keys=[layer.keys for layer in layers], values=[layer.values for layer in layers],
            first_token=int(logits.argmax(-1)[0]), prompt_ids=prompt_ids,
            rope_delta=int(delta.reshape(-1)[0]) if isinstance(delta, torch.Tensor) else 0,
        )

    # -- batched decoding ----------------------------------------------------------------------------

    def new_state(self, rows: int, columns: int, like: Prefill) -> DecodeState:
        shapes = [(k.shape[1], k.shape[3], v.shape[3]) for k, v in zip(like.keys, like.values)]
        return self._allocate(rows, columns, shapes, like.keys[0].dtype)

    def _allocate(self, rows: int, columns: int, shapes, dtype) -> DecodeState:
        import torch

        self._layer_shapes = (shapes, dtype)
        cache = SlotCache(rows, columns, shapes, dtype, self.device)
        state = DecodeState(
            cache=cache,
            tokens=torch.full((rows,), self.pad_id, dtype=torch.long, device=self.device),
            done=torch.ones(rows, dtype=torch.bool, device=self.device),
            remaining=torch.zeros(rows, dtype=torch.long, device=self.device),
            rope_deltas=torch.zeros(rows, dtype=torch.long, device=self.device),
            seen=torch.zeros((rows, self.vocab_size), dtype=torch.bool, device=self.device) if self.penalty else None,
            column_ids=torch.arange(columns, device=self.device),
        )
        if self.mode == "inductor":
            for tensor in state.tensors():
                # guard=False: a new state of a compiled shape re-records its CUDA graph, no recompile
                torch._dynamo.mark_static_address(tensor, guard=False)
        return state

    def reset(self, state: DecodeState) -> None:
        """Every row free (a reused state keeps its tensors, and so its compiled graph)."""
        state.done.fill_(True)
        state.remaining.zero_()
        state.tokens.fill_(self.pad_id)
        state.cache.lengths.zero_()

    def resized(self, state: DecodeState, rows: int, columns: int, into: DecodeState | None = None) -> DecodeState:
        """The same rows in a bigger state (`into`, when given, else a new one): more rows (more pages
        waiting) or more columns (a row's answer outgrew the cache). New rows start free."""
        cache = state.cache
        if into is None:
            into = self._allocate(rows, columns, [(k.shape[1], k.shape[3], v.shape[3])
                                                  for k, v in zip(cache.keys, cache.values)], cache.keys[0].dtype)
        self.reset(into)
        into.cache.copy_from(cache)
        for name in ("tokens", "done", "remaining", "rope_deltas", "seen"):
            if getattr(state, name) is not None:
                getattr(into, name)[:cache.rows] = getattr(state, name)
        return into

    def start_row(self, state: DecodeState, row: int, prefill: Prefill, max_new_tokens: int) -> None:
        """Put a prefilled page into a free row; its first token is already chosen."""
        state.cache.fill(row, prefill)
        state.tokens[row] = prefill.first_token
        state.done[row] = prefill.first_token in self.eos_ids or max_new_tokens <= 1
        state.remaining[row] = max_new_tokens - 1
        state.rope_deltas[row] = prefill.rope_delta
        if state.seen is not None:
            state.seen[row] = False
            state.seen[row, prefill.prompt_ids] = True
            state.seen[row, prefill.first_token] = True

    def step(self, state: DecodeState) -> None:
        """One token for every row, in place: state.tokens holds the new tokens afterwards.

        With torch.compile, a shape that is not compiled yet runs uncompiled and is noted in
        `pending_shapes`: compiling takes tens of seconds, so it happens at load (warm-up) or when
        the worker is idle (`prepare_shape`), never while a page waits for its tokens."""
        if self.mode == "inductor":
            shape = (state.cache.rows, state.cache.columns)
            if shape in self._compiled_shapes:
                import torch

                torch.compiler.cudagraph_mark_step_begin()
                self._step(state)
                return
            self.pending_shapes.add(shape)
        elif self.mode == "graphs":
            if state.graph is None:  # recording takes a moment, unlike compiling
                self._prepare(state, self._record_graph)
            if self.mode == "graphs":
                state.graph.replay()
                return
        self._decode_step(state)

    def prepare_shape(self, rows: int, columns: int, like: Prefill | None = None) -> DecodeState:
        """A fresh state of this shape with its decode step compiled (or recorded) for it."""
        if like is not None:
            state = self.new_state(rows, columns, like)
        elif self._layer_shapes is not None:
            state = self._allocate(rows, columns, *self._layer_shapes)
        else:
            raise ValueError("the first shape needs a prefill to learn the cache's layout")
        self.reset(state)
        self.pending_shapes.discard((rows, columns))
        if self.mode == "inductor":
            self._prepare(state, self._compile_shape)
        elif self.mode == "graphs":
            self._prepare(state, self._record_graph)
        return state

    def _prepare(self, state: DecodeState, how) -> None:
        """Compile or record the step for this state's shape; on failure fall back a mode."""
        import torch

        started = time.perf_counter()
        saved = self._mutable(state)
        before = [t.clone() for t in saved]
        try:
            how(state)
        except torch.OutOfMemoryError:
            raise  # not the compiler's fault: keep the mode, let the caller fail this shape
        except Exception as error:  # noqa: BLE001 - any compiler or capture failure: fall back
            fallback = "graphs" if self.mode == "inductor" and self.device.type == "cuda" else "eager"
            log.warning("%s decoding failed, falling back to %s: %s", self.mode, fallback, error)
            self.compile_error = f"{self.mode}: {type(error).__name__}: {error}"
            if self.mode == "inductor":
                torch._dynamo.reset()
            self.mode, self._step = fallback, self._decode_step
            self.pending_shapes.clear()
            state.graph = None
        finally:  # warm-up calls must leave the state as they found it
            for tensor, copy in zip(saved, before):
                tensor.copy_(copy)
            self.compile_s += time.perf_counter() - started

    def _compile_shape(self, state: DecodeState) -> None:
        import torch

        for _ in range(3):  # compile, record the CUDA graph, replay it once
            torch.compiler.cudagraph_mark_step_begin()
            self._step(state)
        self._compiled_shapes.add((state.cache.rows, state.cache.columns))

    def _record_graph(self, state: DecodeState) -> None:
        import torch

        side = torch.cuda.Stream()  # CUDA graphs want their warm-up off the default stream
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                self._decode_step(state)
        torch.cuda.current_stream().wait_stream(side)
        if self._graph_pool is None:
            self._graph_pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        # thread_local: callers copy their pages to the GPU from other threads meanwhile
        with torch.cuda.graph(graph, pool=self._graph_pool, capture_error_mode="thread_local"):
            self._decode_step(state)
        state.graph = graph

    @staticmethod
    def _mutable(state: DecodeState) -> list:
        tensors = [state.tokens, state.done, state.remaining, state.cache.lengths]
        return tensors + ([state.seen] if state.seen is not None else [])

    def _compiled_step(self):
        import torch

        _pack_gqa_when_compiled()
        config = torch._dynamo.config
        for name in ("recompile_limit", "cache_size_limit"):  # one graph per (rows, columns) bucket
            if hasattr(config, name):
                setattr(config, name, max(getattr(config, name), 64))
        return torch.compile(self._decode_step, mode="reduce-overhead", dynamic=False, fullgraph=False)

    def _decode_step(self, state: DecodeState) -> None:
        import torch

        cache = state.cache
        visible = state.column_ids[None, :] <= cache.lengths[:, None]  # the row's tokens and this one
        mask = visible[:, None, None, :]
        if self.additive_mask:
            dtype = cache.keys[0].dtype
            mask = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)
        positions = (cache.lengths + state.rope_deltas)[:, None]
        if self.multimodal_rope:
            positions = positions[None].expand(3, -1, -1)
        output = self.model(input_ids=state.tokens[:, None], position_ids=positions, attention_mask=mask,
                            cache=cache, use_cache=True, logits_to_keep=1)
        logits = self._process(output.logits[:, -1, :].float(), state.seen)
        chosen = torch.where(state.done, self.pad_id, logits.argmax(-1))
        if state.seen is not None:
            state.seen[cache.row_ids, chosen] = True
        # Finished rows stay put; the others have written this step's token and move on.
        cache.lengths.add_((~state.done).long())
        state.remaining.sub_((~state.done).long())
        state.done.logical_or_(torch.isin(chosen, self.eos) | (state.remaining <= 0))
        state.tokens.copy_(chosen)

    def _process(self, logits, seen):
        """generate's repetition penalty (the only logits processor this path takes), same arithmetic."""
        import torch

        if self.penalty is None or seen is None:
            return logits
        penalised = torch.where(logits < 0, logits * self.penalty, logits / self.penalty)
        return torch.where(seen, penalised, logits)

    def _seen_from(self, ids):
        import torch

        if self.penalty is None:
            return None
        seen = torch.zeros((ids.shape[0], self.vocab_size), dtype=torch.bool, device=ids.device)
        seen[torch.arange(ids.shape[0], device=ids.device)[:, None], ids] = True
        return seen


def bucket_rows(count: int, limit: int) -> int:
    return next((b for b in ROW_BUCKETS if b >= min(count, limit)), ROW_BUCKETS[-1])


def bucket_columns(tokens: int) -> int:
    return next((b for b in COLUMN_BUCKETS if b >= tokens), -(-tokens // 1024) * 1024)


def _pack_gqa_when_compiled() -> None:
    """Let transformers' sdpa attention pack grouped-query heads for one query token under
    torch.compile too, as it does uncompiled (`pack_gqa`: attention runs on the key/value heads).

    transformers skips packing while compiling (for dynamic shapes) and repeats the keys and values
    per query head instead: with a static cache that copies the whole cache every step (x6 for
    dots.ocr's 12 query / 2 key-value heads). Decode steps here compile with static shapes, so
    packing is safe; outside compiled code the check reads False anyway, so nothing else changes.
    """
    from transformers.integrations import sdpa_attention

    if getattr(sdpa_attention, "pack_gqa", None) is not None and hasattr(sdpa_attention, "is_torchdynamo_compiling"):
        sdpa_attention.is_torchdynamo_compiling = _never_compiling


def _never_compiling() -> bool:
    return False
