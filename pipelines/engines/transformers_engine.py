"""Local vision-language models with transformers: load lazily, generate greedily, parse with the family.

One engine holds one model. It is safe to share between threads: loading happens once. Decoder-only
models decode through a batcher: every caller's prompt joins one running batch (pages of a PDF,
Compare columns, other users), on a static KV cache with compiled steps on CUDA. Other models run
transformers' `generate`, one call at a time.
"""
from __future__ import annotations

import dataclasses
import gc
import os
import threading
import time
from pathlib import Path
from typing import Iterator

from ..catalogue import ModelSpec
from ..conversation import ContextWindow
from ..documents import Page
from ..errors import EngineCapabilityError, PipelineError, UnsupportedModeError
from ..schema import PageResult
from .base import EngineNotLoadedError, ParseOptions
from .batcher import Batcher
from .zerogpu import on_gpu
from .hf_generation import STOPPED, TIME_LIMIT, Generation, decode_batched, generate, start_fast_decoding
from .hf_inputs import GOT, ModelInputs, can_chat, chat_inputs, page_inputs
from .hf_loading import LoadedModel, ModelSource, load_model, register_native, resolve_source
from .streaming import stream_pieces


class TransformersEngine:
    name = "transformers"
    default_max_new_tokens = 1024  # free prompts and chat

    def __init__(self, spec: ModelSpec, model_path: str | os.PathLike | None = None, device: str | None = None,
                 preset: str | None = None, max_new_tokens: int | None = None, min_pixels: int | None = None,
                 max_pixels: int | None = None, remote_code: bool = False, decoding: str | None = None,
                 compile: bool | str | None = None, max_batch: int | None = None,
                 warm_up: tuple[tuple[int, int], ...] | None = None):
        """model_path: a local folder (else CHATVLMLLM_MODEL_DIRS, else the hub id); preset: another
        checkpoint of the catalogue entry; remote_code: opt in to an allowlisted checkpoint's own code
        instead of the native classes. max_new_tokens, min_pixels and max_pixels are this engine's
        defaults: a request's ParseOptions override them, the family's own apply where both are unset.
        decoding: "auto" (the batched fast path where the model allows it), "fast" (require it) or
        "generate" (transformers' loop); compile: "auto" (torch.compile on CUDA), "inductor", "graphs"
        (CUDA graphs of the uncompiled step) or False (see fast_decode.Decoder); max_batch: rows
        decoded together (default 32 on CUDA, 4 on CPU); warm_up: (rows, columns) shapes compiled
        at load (default hf_generation.DEFAULT_WARM_UP when compiling). Left out, decoding, compile
        and max_batch come from CHATVLMLLM_DECODING, CHATVLMLLM_COMPILE ("none" for False) and
        CHATVLMLLM_MAX_BATCH, else the defaults above."""
        self.spec = spec
        self.model_path = model_path
        self.device = device
        self.preset = preset
        self.max_new_tokens = max_new_tokens
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels
        # Opt-in fallback: run an allowlisted checkpoint's own code instead of the native classes.
        self.remote_code = remote_code
        decoding = decoding or os.environ.get("CHATVLMLLM_DECODING", "auto")
        if compile is None:
            compile = os.environ.get("CHATVLMLLM_COMPILE", "auto")
            compile = False if compile == "none" else compile
        if max_batch is None and os.environ.get("CHATVLMLLM_MAX_BATCH"):
            max_batch = int(os.environ["CHATVLMLLM_MAX_BATCH"])
        if decoding not in ("auto", "fast", "generate"):
            raise ValueError(f"decoding must be 'auto', 'fast' or 'generate', not {decoding!r}")
        self.decoding, self.compile, self.max_batch, self.warm_up = decoding, compile, max_batch, warm_up
        self.decoding_note = ""  # which path runs, and why (Models tab, benchmarks)
        self.warm_up_s = 0.0
        self._batcher: Batcher | None = None
        self._loaded: LoadedModel | None = None
        self._family = None
        self._chat_overheads: dict[tuple[int, int], tuple[int, int]] = {}  # model size -> (fixed, per message)
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()  # one generation at a time per loaded model

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def source(self) -> ModelSource:
        """Where the weights come from (raises WeightsUnavailableError for a missing local folder)."""
        return resolve_source(self.spec, self.model_path, self.preset)

    def load(self) -> float:
        with self._load_lock:
            if self._loaded is not None:
                return 0.0
            started = time.perf_counter()
            source = dataclasses.replace(self.source, native=register_native(self.spec.family),
                                         remote_code=self.remote_code)
            loaded = load_model(source, self.device)
            self._batcher = self._start_batcher(loaded)
            self._loaded = loaded
            return time.perf_counter() - started

    def _start_batcher(self, loaded: LoadedModel) -> Batcher | None:
        """The fast path's batcher, warmed up (compiled) for the common shapes; None for `generate`."""
        fast = start_fast_decoding(loaded, self.decoding, self.compile, self.max_batch, self.warm_up,
                                   name=f"chatvlmllm-{self.spec.key}")
        self.decoding_note, self.warm_up_s = fast.note, fast.warm_up_s
        return fast.batcher

    @property
    def max_in_flight(self) -> int:
        """Pages the pipeline may hand over at once: the batcher decodes them together."""
        batcher = self._batcher
        return batcher.max_rows if batcher is not None else 1

    def unload(self) -> None:
        with self._load_lock, self._run_lock:  # never pull the model from under a running generation
            if self._loaded is None:
                return
            device = self._loaded.device
            if self._batcher is not None:
                self._batcher.close()
                self._batcher = None
            self._loaded = None
            gc.collect()
            if device.startswith("cuda"):
                import torch

                torch.cuda.empty_cache()

    def expected_bytes(self) -> int:
        """The weights' size on disk (a local folder or the HF cache); 0 before a first download."""
        try:
            folder = Path(self.source.location)
            if not folder.is_dir():
                from huggingface_hub import try_to_load_from_cache

                config = try_to_load_from_cache(self.source.location, "config.json")
                folder = Path(config).parent if isinstance(config, str) else None
        except PipelineError:
            return 0
        if folder is None:
            return 0
        return sum(f.stat().st_size for f in folder.glob("*.safetensors")) + sum(
            f.stat().st_size for f in folder.glob("*.bin"))

    def memory_bytes(self) -> int:
        loaded = self._loaded
        if loaded is None:
            return 0
        tensors = [*loaded.model.parameters(), *loaded.model.buffers()]
        batcher = self._batcher
        caches = batcher.memory_bytes() if batcher is not None else 0
        return sum(t.numel() * t.element_size() for t in tensors) + caches

    @property
    def can_chat(self) -> bool:
        return can_chat(self._model().style)

    # -- parsing -----------------------------------------------------------------------------------

    def parse_page(self, page: Page, mode: str, options: ParseOptions) -> PageResult:
        from ..families.base import ImageLimits

        loaded = self._model()
        family = self._get_family()
        width, height = page.size
        limits = ImageLimits(options.min_pixels or self.min_pixels, options.max_pixels or self.max_pixels)
        region = options.region
        try:
            request = family.request(mode, width, height, limits, region=region,
                                     prompt=options.prompt)
        except ValueError as error:  # e.g. region_text without a region, free_prompt without text
            raise UnsupportedModeError("mode_needs_input", f"Mode {mode!r} cannot run here: {error}.") from None
        max_new_tokens = options.max_new_tokens or self.max_new_tokens or request.max_new_tokens

        started = time.perf_counter()
        inputs = page_inputs(loaded.processor, loaded.style, page.image, request.prompt, request.system,
                             request.model_size, request.processor_kwargs)
        prepare_s = time.perf_counter() - started
        generation = self._generate(loaded, inputs, max_new_tokens, request.keep_special_tokens,
                                    on_text=options.on_text, stop=options.stop, time_limit_s=options.time_limit_s)

        # Boxes refer to the size the model actually saw; the processor's output says what it was.
        model_size = inputs.seen_size or request.model_size
        parsed = family.parse(generation.text, mode, (width, height), model_size, region=region)
        warnings = [*page.warnings, *parsed.warnings]
        if generation.stopped_by == STOPPED:
            warnings.append("generation stopped on request: the page holds what was read until then")
        elif generation.stopped_by == TIME_LIMIT:
            warnings.append(f"generation stopped at the {options.time_limit_s:g} s time limit: the page may be incomplete")
        elif generation.truncated:
            warnings.append(f"output stopped at the {max_new_tokens}-token limit: the page may be incomplete")
        return PageResult(
            page=page.number, width=width, height=height, model=self.spec.key, mode=mode,
            elements=parsed.elements, raw_output=generation.text,
            timings={"prepare_s": prepare_s, "first_token_s": generation.first_token_s,
                     "generate_s": generation.generate_s},
            tokens={"prompt": inputs.prompt_tokens, "generated": generation.generated},
            warnings=warnings,
        )

    def inference(self, page: Page, prompt: str, max_new_tokens: int | None = None) -> str:
        """The model's raw answer to a free prompt about the page (special tokens such as boxes kept)."""
        loaded = self._model()
        if can_chat(loaded.style):
            return self.chat(page, [{"role": "user", "content": prompt}], max_new_tokens=max_new_tokens)
        if loaded.style == GOT:
            raise EngineCapabilityError(
                "cannot_prompt", f"{self.spec.key!r} (GOT-OCR2) only runs its fixed OCR prompts.")
        inputs = page_inputs(loaded.processor, loaded.style, page.image, prompt)
        return self._generate(loaded, inputs, self._chat_budget(max_new_tokens), True).text

    def chat(self, page: Page, messages: list[dict], stream: bool = False,
             max_new_tokens: int | None = None) -> Iterator[str] | str:
        """Answer the last user message; the whole history goes through the chat template."""
        loaded = self._model()
        if not can_chat(loaded.style):
            raise EngineCapabilityError(
                "cannot_chat",
                f"{self.spec.key!r} has no chat template: it reads documents with fixed task prompts only.",
            )
        inputs = chat_inputs(loaded.processor, page.image, messages, self._chat_size(page))
        budget = self._chat_budget(max_new_tokens)
        if stream:
            return self._stream(loaded, inputs, budget)
        return self._generate(loaded, inputs, budget, True).text

    def context_window(self, page: Page, max_new_tokens: int | None = None) -> ContextWindow:
        """What a chat about this page may spend on its messages, in this model's tokens: the context
        length less the page's image tokens, the template around one question and the answer's budget."""
        loaded = self._model()
        tokenizer = loaded.processor.tokenizer

        def count(text: str) -> int:
            return len(tokenizer.encode(text, add_special_tokens=False))

        size = self._chat_size(page)
        if size not in self._chat_overheads:
            # Measured, not estimated: the template rendered around probe messages (text only for the
            # per-message cost, with the page once for the image and the generation prompt).
            probe = "x"
            one = [{"role": "user", "content": [{"type": "text", "text": probe}]}]
            three = one + [{"role": role, "content": [{"type": "text", "text": probe}]} for role in ("assistant", "user")]
            rendered = [count(loaded.processor.apply_chat_template(m, tokenize=False, add_generation_prompt=True))
                        for m in (one, three)]
            per_message = max(0, -(-(rendered[1] - rendered[0] - 2 * count(probe)) // 2))
            with_page = chat_inputs(loaded.processor, page.image, one, size).prompt_tokens
            self._chat_overheads[size] = (with_page - count(probe) - per_message, per_message)
        fixed, per_message = self._chat_overheads[size]
        text_config = loaded.model.config.get_text_config()
        context = int(getattr(text_config, "max_position_embeddings", None) or 32768)
        return ContextWindow(limit=context - fixed - self._chat_budget(max_new_tokens), unit="tokens",
                             count=count, per_message=per_message, context=context)

    def _chat_budget(self, max_new_tokens: int | None) -> int:
        return max_new_tokens or self.max_new_tokens or self.default_max_new_tokens

    def _chat_size(self, page: Page) -> tuple[int, int]:
        """Chat sees the page at the size parsing does (the family's resize, this engine's limits)."""
        from ..families.base import ImageLimits

        return self._get_family().model_size(*page.size, ImageLimits(self.min_pixels, self.max_pixels))

    # -- generation --------------------------------------------------------------------------------

    def _model(self) -> LoadedModel:
        """The loaded model (the reference stays valid for this call even if another thread unloads
        it). Loading is the model manager's call, never a request's: see Pipeline.in_use."""
        loaded = self._loaded
        if loaded is None:
            raise EngineNotLoadedError(self.spec.key)
        return loaded

    @on_gpu  # ZeroGPU Spaces attach the GPU for this call only (a no-op elsewhere)
    def _generate(self, loaded: LoadedModel, inputs: ModelInputs, max_new_tokens: int,
                  keep_special_tokens: bool, **hooks) -> Generation:
        batcher = self._batcher
        if batcher is not None:
            return decode_batched(batcher, loaded, inputs, max_new_tokens, keep_special_tokens, **hooks)
        with self._run_lock:
            return generate(loaded, inputs, max_new_tokens, keep_special_tokens, **hooks)

    def _stream(self, loaded: LoadedModel, inputs: ModelInputs, max_new_tokens: int) -> Iterator[str]:
        """Text chunks as they are generated; generation stops when the iterator is closed."""
        return stream_pieces(
            lambda on_text, stop: self._generate(loaded, inputs, max_new_tokens, True, on_text=on_text, stop=stop),
            "chatvlmllm-generate",
        )

    def _get_family(self):
        if self._family is None:
            from ..families import get_family

            self._family = get_family(self.spec.family)
        return self._family

