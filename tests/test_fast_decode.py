"""The fast decoding path (pipelines/engines/fast_decode.py, batcher.py) against transformers' generate.

Greedy output must be token-identical to `model.generate` on the same weights (fp32, CPU): alone,
in a batch with other pages of other lengths and budgets, when a page joins a running batch, when
the cache grows, with a repetition penalty, and compiled.
"""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

import torch  # noqa: E402 - a requirement: a missing install fails here
import transformers  # noqa: E402,F401

from pipelines import ParseOptions, PipelineError, get_spec, load_pipeline  # noqa: E402
from pipelines.engines import fast_decode  # noqa: E402
from pipelines.engines.batcher import Batcher, DecodeRequest  # noqa: E402
from pipelines.engines.fast_decode import Decoder  # noqa: E402
from pipelines.engines.hf_generation import generate  # noqa: E402
from pipelines.engines.hf_inputs import page_inputs  # noqa: E402
from pipelines.engines.transformers_engine import TransformersEngine  # noqa: E402
from pipelines.families import ImageLimits, get_family  # noqa: E402
from tests.pages import PAGE_ONE, PAGE_TWO, render_page  # noqa: E402
from tests.test_dots_native import build_dots_twin  # noqa: E402
from tests.twins import build_twin  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

MIN_PIXELS = 28 * 28 * 4
# Every decoder-only model of the catalogue (Florence-2 is encoder-decoder: it keeps generate).
DECODER_ONLY = ("dots_ocr", "qwen2_vl_2b", "qwen2_5_vl_3b", "qwen3_vl_2b", "got_ocr2", "paddleocr_vl",
                "lighton_ocr", "glm_ocr", "deepseek_ocr2")


@pytest.fixture(scope="module")
def twin_root(tmp_path_factory):
    return tmp_path_factory.mktemp("fast_twins")


def twin_path(key: str, root: Path) -> Path:
    if key == "dots_ocr":
        directory = root / "dots_ocr"
        if not (directory / "config.json").exists():
            directory.mkdir(parents=True, exist_ok=True)
            build_dots_twin(directory)
        return directory
    return build_twin(key, root)


_engines: dict[str, TransformersEngine] = {}


def engine_for(key: str, root: Path, **options) -> TransformersEngine:
    name = f"{key}{sorted(options.items())}"
    if name not in _engines:
        engine = TransformersEngine(get_spec(key), model_path=twin_path(key, root), **{"decoding": "fast", **options})
        engine.load()
        _engines[name] = engine
    return _engines[name]


def page_prompt(engine: TransformersEngine, image, max_pixels: int = 28 * 28 * 48):
    """The model inputs for reading this page's text, as the engine builds them."""
    engine.load()
    loaded = engine._model()
    family = get_family(engine.spec.family)
    mode = "text_only" if "text_only" in engine.spec.modes else engine.spec.modes[0]
    request = family.request(mode, *image.size, ImageLimits(MIN_PIXELS, max_pixels))
    return page_inputs(loaded.processor, loaded.style, image, request.prompt, request.system,
                       request.model_size, request.processor_kwargs)


def reference(engine: TransformersEngine, inputs, max_new_tokens: int) -> tuple[int, ...]:
    """Tokens of transformers' own greedy generate on the same weights."""
    engine.load()
    return generate(engine._model(), inputs, max_new_tokens, True).token_ids


def held_batcher(batcher: Batcher):
    """Keep the worker busy until released, so that requests queued meanwhile start together."""
    release = threading.Event()
    started = threading.Event()
    holder = threading.Thread(target=lambda: batcher.call(lambda: (started.set(), release.wait())))
    holder.start()
    started.wait()
    return release, holder


def submit_all(batcher: Batcher, requests: list[DecodeRequest]) -> None:
    threads = [threading.Thread(target=batcher.submit, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def on_device(engine, inputs):
    engine.load()
    loaded = engine._model()
    return inputs.tensors.to(loaded.device).to(loaded.dtype)


@pytest.fixture(scope="module")
def pages():
    first = render_page(*PAGE_ONE)
    return [first, render_page(*PAGE_TWO), first.resize((700, 980)).rotate(90, expand=True)]


@pytest.mark.parametrize("key", DECODER_ONLY)
def test_fast_path_is_token_identical_to_generate(key, twin_root, pages):
    engine = engine_for(key, twin_root)
    assert engine._batcher is not None, engine.decoding_note
    assert "batched static-cache decoding" in engine.decoding_note
    inputs = page_prompt(engine, pages[0])
    expected = reference(engine, inputs, 24)
    engine.load()
    fast = engine._generate(engine._model(), inputs, 24, True)
    assert len(expected) == 24
    assert fast.token_ids == expected
    assert fast.generated == 24 and fast.truncated


@pytest.mark.parametrize("key", ("qwen2_5_vl_3b", "dots_ocr"))
def test_a_batch_of_pages_reads_each_page_as_alone(key, twin_root, pages):
    """Three pages of different lengths and budgets, one stopped by an end token, decoded together
    with the host reading every 4 steps: each row's tokens equal generate's for that page alone."""
    engine = engine_for(key, twin_root)
    inputs = [page_prompt(engine, image, 28 * 28 * pixels) for image, pixels in zip(pages, (48, 20, 32))]
    budgets = [30, 9, 41]
    expected = [reference(engine, i, b) for i, b in zip(inputs, budgets)]
    assert len({len(i.tensors["input_ids"][0]) for i in inputs}) == 3  # three prompt lengths
    # An end token that the first page's answer reaches at its 7th token (and perhaps earlier).
    end = expected[0][6]
    stop_at = expected[0].index(end) + 1
    with_end = generate_with_end(engine, inputs[0], budgets[0], end)
    assert with_end == list(expected[0][:stop_at])

    batcher = Batcher(decoder_for(engine, {end}, sync_every=4), max_rows=4)
    release, holder = held_batcher(batcher)
    requests = [DecodeRequest(on_device(engine, i), b) for i, b in zip(inputs, budgets)]
    submitting = threading.Thread(target=submit_all, args=(batcher, requests))
    submitting.start()
    while batcher.waiting() < 3:
        threading.Event().wait(0.01)
    release.set()
    submitting.join()
    holder.join()
    batcher.close()
    assert batcher.stats["batches"] == 1 and batcher.stats["max_rows_busy"] == 3
    assert requests[0].tokens == with_end
    for request, tokens, budget in zip(requests[1:], expected[1:], budgets[1:]):
        cut = next((n + 1 for n, t in enumerate(tokens) if t == end), budget)
        assert request.tokens == list(tokens[:cut])


def generate_with_end(engine, inputs, budget: int, end: int) -> list[int]:
    engine.load()
    loaded = engine._model()
    config = loaded.model.generation_config
    with torch.inference_mode():
        output = loaded.model.generate(**on_device(engine, inputs), max_new_tokens=budget, do_sample=False,
                                       eos_token_id=[*_as_list(config.eos_token_id), end],
                                       pad_token_id=config.pad_token_id)
    return output[0, inputs.prompt_tokens:].tolist()


def _as_list(value) -> list[int]:
    return [value] if isinstance(value, int) else list(value or [])


def decoder_for(engine, extra_ends: set[int] = frozenset(), **options) -> Decoder:
    """A Decoder on the engine's model with its own end tokens (plus extra_ends); uncompiled unless
    options say otherwise."""
    engine.load()
    loaded = engine._model()
    config = loaded.model.generation_config
    settings = {"repetition_penalty": None, "compile": False, **options}
    return Decoder(loaded.model, eos_ids=set(_as_list(config.eos_token_id)) | set(extra_ends),
                   pad_id=config.pad_token_id, **settings)


def small_batcher(engine, max_rows: int = 4, **options) -> Batcher:
    return Batcher(decoder_for(engine, **options), max_rows=max_rows)


def test_a_page_joins_a_running_batch_and_the_cache_grows(twin_root, pages, monkeypatch):
    """A second page arrives while the first decodes: it takes a new row of the same batch. The
    cache starts at 128 columns and grows as the answers get longer; nothing changes the tokens."""
    monkeypatch.setattr(fast_decode, "COLUMN_BUCKETS", (128, 192, 256, 384))
    engine = engine_for("qwen2_vl_2b", twin_root)
    first, second = page_prompt(engine, pages[0], 28 * 28 * 24), page_prompt(engine, pages[1], 28 * 28 * 16)
    assert first.prompt_tokens < 110
    expected = [reference(engine, first, 180), reference(engine, second, 120)]
    batcher = small_batcher(engine, sync_every=3)
    underway = threading.Event()
    one = DecodeRequest(on_device(engine, first), 180, on_tokens=lambda ids: underway.set() if len(one.tokens) > 20 else None)
    two = DecodeRequest(on_device(engine, second), 120)
    running = threading.Thread(target=batcher.submit, args=(one,))
    running.start()
    assert underway.wait(timeout=120)
    batcher.submit(two)
    running.join()
    assert max(columns for _, columns in batcher._states) == 384  # 128 -> ... -> 384 columns
    batcher.close()
    assert batcher.stats["batches"] == 1 and batcher.stats["max_rows_busy"] == 2
    assert one.tokens == list(expected[0]) and two.tokens == list(expected[1])


def test_eager_attention_gets_an_additive_mask_and_the_same_tokens(twin_root, pages):
    engine = TransformersEngine(get_spec("qwen2_5_vl_3b"), model_path=twin_path("qwen2_5_vl_3b", twin_root),
                                decoding="fast")
    engine.load()
    loaded = engine._model()
    loaded.model.set_attn_implementation("eager")
    assert loaded.model.config.get_text_config()._attn_implementation == "eager"
    inputs = page_prompt(engine, pages[0])
    expected = reference(engine, inputs, 16)
    decoder = decoder_for(engine)
    assert decoder.additive_mask
    batcher = Batcher(decoder, max_rows=2)
    request = batcher.submit(DecodeRequest(on_device(engine, inputs), 16))
    batcher.close()
    engine.unload()
    assert request.tokens == list(expected)


def test_repetition_penalty_matches_generate(twin_root, pages):
    engine = engine_for("lighton_ocr", twin_root)
    engine.load()
    loaded = engine._model()
    inputs = page_prompt(engine, pages[0])
    with torch.inference_mode():
        plain = loaded.model.generate(**on_device(engine, inputs), max_new_tokens=30, do_sample=False)
        penalised = loaded.model.generate(**on_device(engine, inputs), max_new_tokens=30, do_sample=False,
                                          repetition_penalty=1.5)
    expected = penalised[0, inputs.prompt_tokens:].tolist()
    assert expected != plain[0, inputs.prompt_tokens:].tolist()  # the penalty changes this answer
    batcher = Batcher(decoder_for(engine, repetition_penalty=1.5), max_rows=2)
    request = batcher.submit(DecodeRequest(on_device(engine, inputs), 30))
    batcher.close()
    assert request.tokens == expected


def test_compiled_decoding_is_token_identical(twin_root, pages):
    """torch.compile of the decode step (inductor; CUDA graphs on a GPU), warmed up at load."""
    engine = engine_for("qwen2_5_vl_3b", twin_root, compile=True, warm_up=((2, 1024),))
    assert engine._batcher.decoder.compile, engine._batcher.decoder.compile_error
    assert (2, 1024) in engine._batcher.decoder._compiled_shapes and engine.warm_up_s > 0
    assert "torch.compile" in engine.decoding_note and engine._batcher.decoder.mode == "inductor"
    inputs = [page_prompt(engine, pages[0]), page_prompt(engine, pages[1], 28 * 28 * 20)]
    expected = [reference(engine, i, 20) for i in inputs]
    results = [None, None]

    def run(index):
        engine.load()
        results[index] = engine._generate(engine._model(), inputs[index], 20, True).token_ids

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == expected


def test_a_shape_met_uncompiled_runs_at_once_and_compiles_when_idle(twin_root, pages):
    """No page waits for the compiler: a batch shape not compiled at load decodes uncompiled, and
    the worker compiles it once nothing is queued; later pages of that shape use the compiled step."""
    # An engine of its own: no other test can have compiled (1, 1024) for it.
    engine = engine_for("qwen2_5_vl_3b", twin_root, compile=True, warm_up=((4, 1024),))
    decoder = engine._batcher.decoder
    inputs = page_prompt(engine, pages[2], 28 * 28 * 20)
    expected = reference(engine, inputs, 12)
    assert (1, 1024) not in decoder._compiled_shapes
    compile_s = decoder.compile_s
    engine.load()
    first = engine._generate(engine._model(), inputs, 12, True)  # one page: a batch of 1 row
    assert first.token_ids == expected
    for _ in range(600):  # the idle worker compiles (1, 1024)
        if (1, 1024) in decoder._compiled_shapes:
            break
        threading.Event().wait(0.1)
    assert (1, 1024) in decoder._compiled_shapes and not decoder.pending_shapes
    assert decoder.compile_s > compile_s
    engine.load()
    assert engine._generate(engine._model(), inputs, 12, True).token_ids == expected


def test_a_compiler_failure_falls_back_to_uncompiled_decoding(twin_root, pages, monkeypatch):
    def broken(self, state):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(Decoder, "_compile_shape", broken)
    engine = TransformersEngine(get_spec("glm_ocr"), model_path=build_twin("glm_ocr", twin_root), decoding="fast",
                                compile=True,
                                warm_up=((1, 1024),))
    engine.load()
    decoder = engine._batcher.decoder
    assert decoder.mode == "eager" and decoder.compile_error == "inductor: RuntimeError: no C++ compiler"
    assert engine.decoding_note.endswith("(uncompiled; inductor: RuntimeError: no C++ compiler), up to 4 rows")
    inputs = page_prompt(engine, pages[0])
    engine.load()
    assert engine._generate(engine._model(), inputs, 12, True).token_ids == reference(engine, inputs, 12)
    engine.unload()


def test_waiting_for_a_row_does_not_count_against_the_time_limit_and_a_stop_ends_a_waiting_page(
        twin_root, pages):
    engine = engine_for("qwen2_vl_2b", twin_root)
    engine.load()
    loaded = engine._model()
    inputs = page_prompt(engine, pages[0])
    batcher = engine._batcher
    release, holder = held_batcher(batcher)
    results = {}
    stop = threading.Event()
    stop.set()
    threads = [
        threading.Thread(target=lambda: results.update(timed=engine._generate(loaded, inputs, 10, True, time_limit_s=2))),
        threading.Thread(target=lambda: results.update(stopped=engine._generate(loaded, inputs, 10, True, stop=stop))),
    ]
    for thread in threads:
        thread.start()
    while batcher.waiting() < 2:
        threading.Event().wait(0.01)
    threading.Event().wait(2.5)  # longer than the time limit, spent waiting
    release.set()
    for thread in threads:
        thread.join()
    holder.join()
    assert results["timed"].generated == 10 and results["timed"].stopped_by is None
    assert results["stopped"].generated == 0 and results["stopped"].stopped_by == "stopped"
    assert results["stopped"].text == "" and not results["stopped"].truncated


def test_a_failing_prompt_fails_alone(twin_root, pages):
    engine = engine_for("qwen3_vl_2b", twin_root)
    engine.load()
    loaded = engine._model()
    good = page_prompt(engine, pages[0])
    broken = dict(on_device(engine, good))  # a copy: the prompt itself stays whole
    broken["pixel_values"] = broken["pixel_values"][:4]  # fewer patches than the prompt's image tokens
    with pytest.raises(Exception):
        engine._batcher.submit(DecodeRequest(broken, 8))
    assert engine._generate(loaded, good, 8, True).token_ids == reference(engine, good, 8)


def test_decoding_settings_come_from_the_environment_when_not_given(twin_root, monkeypatch):
    monkeypatch.setenv("CHATVLMLLM_DECODING", "generate")
    monkeypatch.setenv("CHATVLMLLM_COMPILE", "none")
    monkeypatch.setenv("CHATVLMLLM_MAX_BATCH", "8")
    engine = TransformersEngine(get_spec("glm_ocr"), model_path=build_twin("glm_ocr", twin_root))
    assert (engine.decoding, engine.compile, engine.max_batch) == ("generate", False, 8)
    engine.load()
    assert engine._batcher is None and engine.decoding_note == "transformers generate (chosen)"
    engine.unload()
    default = TransformersEngine(get_spec("glm_ocr"), model_path=build_twin("glm_ocr", twin_root), decoding="auto")
    default.load()  # not yet verified on a GPU: transformers' generate unless asked
    assert default._batcher is None and default.decoding_note.startswith("transformers generate (default;")
    default.unload()
    given = TransformersEngine(get_spec("glm_ocr"), model_path=build_twin("glm_ocr", twin_root), decoding="fast",
                               max_batch=2)
    assert (given.decoding, given.max_batch) == ("fast", 2)
    given.load()
    assert given.max_in_flight == 2 and given.decoding_note.endswith("up to 2 rows")
    given.unload()


def test_models_that_cannot_take_the_fast_path_keep_generate(twin_root):
    florence = TransformersEngine(get_spec("florence2"), model_path=build_twin("florence2", twin_root))
    florence.load()
    assert florence._batcher is None and florence.max_in_flight == 1
    asked = TransformersEngine(get_spec("florence2"), model_path=build_twin("florence2", twin_root), decoding="fast")
    asked.load()  # asked for the fast path, it still runs, on generate, and says why
    assert asked._batcher is None and asked.decoding_note == "transformers generate (encoder-decoder model)"


def test_a_pdf_parses_the_same_batched_as_with_generate(twin_root, tmp_path):
    """The user-level promise: the pipeline hands a PDF's pages to the batcher at once, and every
    page's text and tokens equal those of transformers' generate, page by page."""
    from tests.pages import write_pdf

    document = write_pdf(tmp_path / "three.pdf", (PAGE_ONE, PAGE_TWO, PAGE_ONE))
    options = ParseOptions(min_pixels=MIN_PIXELS, max_pixels=28 * 28 * 32, max_new_tokens=20)
    path = twin_path("qwen2_5_vl_3b", twin_root)
    fast = load_pipeline("qwen2_5_vl_3b", model_path=str(path), decoding="fast", max_batch=4)
    slow = load_pipeline("qwen2_5_vl_3b", model_path=str(path), decoding="generate")
    fast.load()
    batcher = fast.engine._batcher
    before = dict(batcher.stats)
    release, holder = held_batcher(batcher)  # the worker starts once all three pages wait
    parsed = {}
    parsing = threading.Thread(target=lambda: parsed.update(
        result=fast.parse_document(document, "text_only", options=options)))
    parsing.start()
    while batcher.waiting() < 3:
        threading.Event().wait(0.01)
    release.set()
    parsing.join()
    holder.join()
    batched = parsed["result"]
    alone = slow.parse_document(document, "text_only", options=options)
    assert fast.engine.max_in_flight == 4 and slow.engine.max_in_flight == 1
    assert batcher.stats["batches"] - before.get("batches", 0) == 1 and batcher.stats["max_rows_busy"] == 3
    assert [p.raw_output for p in batched.pages] == [p.raw_output for p in alone.pages]
    assert [p.tokens for p in batched.pages] == [p.tokens for p in alone.pages]
    assert batched.pages[0].raw_output == batched.pages[2].raw_output  # the same page twice


def test_a_failure_while_setting_up_a_batch_fails_its_pages_and_the_worker_goes_on(twin_root, pages, monkeypatch):
    engine = engine_for("qwen2_vl_2b", twin_root)
    inputs = page_prompt(engine, pages[0])
    batcher = small_batcher(engine)
    original = Decoder.new_state
    calls = []

    def failing_once(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("simulated: no memory for the cache")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Decoder, "new_state", failing_once)
    with pytest.raises(RuntimeError, match="no memory for the cache"):
        batcher.submit(DecodeRequest(on_device(engine, inputs), 6))
    assert batcher._thread.is_alive()
    assert batcher.submit(DecodeRequest(on_device(engine, inputs), 6)).tokens == list(reference(engine, inputs, 6))
    batcher.close()


def test_max_batch_is_rounded_down_to_a_row_bucket(twin_root):
    engine = engine_for("qwen2_vl_2b", twin_root)
    assert [small_batcher(engine, n).max_rows for n in (1, 3, 6, 8, 100)] == [1, 2, 4, 8, 64]


def test_a_page_stopped_while_waiting_for_a_row_ends_at_once(twin_root, pages):
    """One row, busy with a long page: a second page that is stopped while it waits ends at the
    next sync point, not when the first page is done."""
    engine = engine_for("qwen2_vl_2b", twin_root)
    inputs = page_prompt(engine, pages[0])
    batcher = small_batcher(engine, max_rows=1)
    underway = threading.Event()
    long = DecodeRequest(on_device(engine, inputs), 400, on_tokens=lambda ids: underway.set())
    running = threading.Thread(target=batcher.submit, args=(long,))
    running.start()
    assert underway.wait(timeout=60)
    stop = threading.Event()
    waiting = DecodeRequest(on_device(engine, inputs), 10, stop=stop)
    waiter = threading.Thread(target=batcher.submit, args=(waiting,))
    waiter.start()
    while batcher.waiting() < 1 and not waiting.finished.is_set():
        threading.Event().wait(0.005)
    stop.set()
    waiter.join(timeout=60)
    assert waiting.finished.is_set() and waiting.stopped_by == "stopped" and waiting.tokens == []
    assert not long.finished.is_set()  # the long page was still decoding
    running.join()
    assert len(long.tokens) == 400
    batcher.close()


def test_growing_a_batch_reuses_the_kept_state_of_that_shape(twin_root, pages):
    engine = engine_for("qwen2_vl_2b", twin_root)
    batcher = small_batcher(engine)
    tensors = on_device(engine, page_prompt(engine, pages[0]))

    def grow_twice():
        prefill = batcher.decoder.prefill(tensors)
        one = batcher._state(1, 1024, prefill)
        two = batcher._resize(one, 2, 1024)
        again = batcher._resize(one, 2, 1024)
        return two, again, batcher._resize(two, 2, 2000)

    two, again, wider = batcher.call(grow_twice)
    assert again is two  # the same tensors: a compiled graph recorded for them stays valid
    assert (wider.cache.rows, wider.cache.columns) == (2, 2048)
    batcher.close()


def test_out_of_memory_while_compiling_keeps_the_compiled_mode(twin_root, monkeypatch):
    engine = engine_for("qwen2_vl_2b", twin_root)
    engine.load()
    loaded = engine._model()

    def out_of_memory(self, state):
        raise torch.OutOfMemoryError("simulated")

    monkeypatch.setattr(Decoder, "_compile_shape", out_of_memory)
    config = loaded.model.generation_config
    decoder = decoder_for(engine, compile=True)
    prompt = torch.tensor([[config.pad_token_id] * 3])
    with torch.inference_mode():
        prefill = decoder.prefill({"input_ids": prompt})
        with pytest.raises(torch.OutOfMemoryError):
            decoder.prepare_shape(1, 1024, like=prefill)
    assert decoder.mode == "inductor" and decoder.compile_error is None


def test_unload_stops_the_worker_and_frees_the_caches(twin_root, pages):
    engine = TransformersEngine(get_spec("glm_ocr"), model_path=build_twin("glm_ocr", twin_root), decoding="fast")
    engine.load()
    engine._generate(engine._model(), page_prompt(engine, pages[0]), 6, True)
    batcher = engine._batcher
    assert batcher.memory_bytes() > 0
    engine.load()
    weights = sum(p.numel() * p.element_size() for p in engine._model().model.parameters())
    assert engine.memory_bytes() > weights  # the KV caches count too
    engine.unload()
    assert engine._batcher is None and not batcher._thread.is_alive() and batcher.memory_bytes() == 0
    with pytest.raises(PipelineError, match="unloaded while this request waited") as error:
        batcher.submit(DecodeRequest(None, 4))
    assert error.value.code == "model_unloaded"


@pytest.mark.parametrize("key", DECODER_ONLY)
def test_fast_path_logits_match_generate_at_every_step(key, twin_root, pages):
    """Stronger than equal greedy tokens (random twins' answers cycle through a few tokens): the
    logits the fast path computes at the prefill and at every decode step equal transformers'
    generate's, before any processing, within float32 rounding."""
    from pipelines.engines.hf_generation import _greedy_config

    engine = engine_for(key, twin_root)
    decoder = engine._batcher.decoder
    inputs = page_prompt(engine, pages[0])
    loaded = engine._model()
    steps = 16
    config = _greedy_config(loaded, steps)
    with torch.inference_mode():
        expected = loaded.model.generate(**on_device(engine, inputs), generation_config=config, do_sample=False,
                                         max_new_tokens=steps, min_new_tokens=steps, output_logits=True,
                                         return_dict_in_generate=True).logits
    seen: list[torch.Tensor] = []
    original = decoder._process

    def recording(logits, already_seen):
        seen.append(logits[0].detach().clone())
        return original(logits, already_seen)

    decoder._process = recording
    try:
        fast = engine._generate(loaded, inputs, steps, True)
    finally:
        decoder._process = original
    assert len(fast.token_ids) == steps and len(expected) == steps
    assert len(seen) >= steps
    for step, (ours, theirs) in enumerate(zip(seen, expected)):
        theirs = theirs[0].float()
        scale = theirs.abs().max().item()
        assert torch.allclose(ours, theirs, atol=1e-4 * max(1.0, scale), rtol=1e-4), (
            f"step {step}: max difference {(ours - theirs).abs().max().item():.3g} (logits up to {scale:.3g})")
