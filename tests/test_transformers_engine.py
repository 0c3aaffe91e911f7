"""The transformers engine on tiny random-weight twins of every vision-language model in the catalogue.

The twins (tests/twins.py) are the real architectures, processors and tokenizer classes at toy
sizes, so loading, prompting, generation and parsing run exactly as for real checkpoints. Their
output is noise: the tests check structure, sizes, budgets, what reaches the model, and errors.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import threading
import time

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from pipelines import (  # noqa: E402
    CATALOGUE, CATEGORIES, DocumentResult, EngineCapabilityError, ParseOptions, PipelineError, get_spec, load_pipeline,
)
from pipelines.engines import hf_loading  # noqa: E402
from pipelines.engines.hf_loading import (  # noqa: E402
    MODEL_DIRS_ENV, ModelSource, WeightsUnavailableError, load_model, resolve_source, translate_load_error,
)
from pipelines.engines.transformers_engine import TransformersEngine  # noqa: E402
from pipelines.families import ImageLimits, get_family  # noqa: E402
from tests.app_server import free_port  # noqa: E402
from tests.pages import PAGE_ONE, PAGE_SIZE, render_page  # noqa: E402
from tests.server_fixture import HangingServer  # noqa: E402
from tests.test_dots_native import build_dots_twin  # noqa: E402
from tests.twins import TWIN_KEYS, build_twin  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

MAX_NEW_TOKENS = 16
# Small pixel budgets keep the twins' pages to a few dozen visual tokens.
MIN_PIXELS, MAX_PIXELS = 28 * 28 * 4, 28 * 28 * 48
OPTIONS = ParseOptions(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, max_new_tokens=MAX_NEW_TOKENS)
ENGINE_LIMITS = {"max_new_tokens": MAX_NEW_TOKENS, "min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS}
# Modes that need input the pipeline does not pass yet (a region, the user's prompt).
NEEDS_INPUT = {"region_text", "free_prompt"}
# Twins whose processor resizes within a pixel budget (Qwen-VL style): the engine makes them see
# the page at exactly the family's model_size.
BUDGET_TWINS = ("qwen2_vl_2b", "qwen2_5_vl_3b", "qwen3_vl_2b", "paddleocr_vl", "glm_ocr")
CHAT_TWIN = "qwen2_5_vl_3b"


@pytest.fixture(scope="session")
def twin_root(tmp_path_factory):
    return tmp_path_factory.mktemp("twins")


@pytest.fixture(scope="session")
def page():
    return render_page(*PAGE_ONE)


def twin_dir(key: str, root) -> str:
    return str(build_twin(key, root))


def capture_generate(engine: TransformersEngine, monkeypatch) -> list[dict]:
    """Record what every generation on the engine receives: the model's input tensors and the
    token budget (for this test; the batched fast path and transformers' generate alike)."""
    engine.load()
    calls: list[dict] = []
    original = engine._generate

    def recording(loaded, inputs, max_new_tokens, *args, **kwargs):
        calls.append({**inputs.tensors, "max_new_tokens": max_new_tokens})
        return original(loaded, inputs, max_new_tokens, *args, **kwargs)

    monkeypatch.setattr(engine, "_generate", recording)
    return calls


def decoded_prompt(engine: TransformersEngine, call: dict) -> str:
    engine.load()
    tokenizer = engine._model().processor.tokenizer
    return tokenizer.decode(call["input_ids"][0].tolist(), skip_special_tokens=False)


def test_catalogue_has_every_vision_language_model_with_family_modes():
    transformers_keys = {key for key, spec in CATALOGUE.items() if spec.engine == "transformers"}
    # dots.ocr is not in transformers: its twin comes with its native implementation (see below).
    assert transformers_keys - {"dots_ocr"} == set(TWIN_KEYS)
    assert list(CATALOGUE)[0] == "classic"
    for key in transformers_keys:
        spec = CATALOGUE[key]
        assert spec.modes == get_family(spec.family).modes, key
        assert spec.hub_id and "/" in spec.hub_id
    assert {k for k in transformers_keys if CATALOGUE[k].can_chat} == {"qwen2_vl_2b", "qwen2_5_vl_3b", "qwen3_vl_2b"}
    assert get_spec("qwen_vl_2b").key == "qwen2_vl_2b" and get_spec("got_ocr_hf").key == "got_ocr2"
    assert dict(get_spec("qwen2_5_vl_3b").presets) == {
        "olmocr2": "allenai/olmOCR-2-7B-1025", "nanonets_ocr2": "nanonets/Nanonets-OCR2-3B"}


@pytest.mark.parametrize("key", TWIN_KEYS)
def test_parse_document_returns_a_valid_result_for_every_mode(key, twin_root, page):
    pipeline = load_pipeline(key, model_path=twin_dir(key, twin_root))
    for mode in pipeline.spec.modes:
        if mode in NEEDS_INPUT:
            continue
        result = pipeline.parse_document(page, mode, options=OPTIONS)
        assert isinstance(result, DocumentResult) and (result.model, result.mode) == (key, mode)
        assert DocumentResult.from_json(result.to_json()).to_dict() == result.to_dict()
        [parsed] = result.pages
        assert (parsed.width, parsed.height) == page.size == PAGE_SIZE
        for element in parsed.elements:
            x1, y1, x2, y2 = element.bbox
            assert 0 <= x1 < x2 <= parsed.width and 0 <= y1 < y2 <= parsed.height, element
            assert element.category in CATEGORIES
        # A page either has elements or says why not.
        assert parsed.elements or parsed.warnings
        assert {"load_s", "first_token_s", "generate_s", "total_s"} <= set(parsed.timings)
        assert all(value >= 0 for value in parsed.timings.values())
        assert parsed.timings["first_token_s"] <= parsed.timings["generate_s"] <= parsed.timings["total_s"]
        assert 0 < parsed.tokens["generated"] <= MAX_NEW_TOKENS and parsed.tokens["prompt"] > 0
        assert isinstance(parsed.raw_output, str) and isinstance(parsed.markdown, str)
        if parsed.tokens["generated"] == MAX_NEW_TOKENS:
            assert any("16-token limit" in w for w in parsed.warnings)


@pytest.mark.parametrize("key", BUDGET_TWINS)
def test_budget_processors_see_the_page_at_the_familys_model_size(key, twin_root, page, monkeypatch):
    pipeline = load_pipeline(key, model_path=twin_dir(key, twin_root))
    calls = capture_generate(pipeline.engine, monkeypatch)
    pipeline.parse_document(page, "text_only", options=OPTIONS)
    family = get_family(pipeline.spec.family)
    width, height = family.model_size(*page.size, ImageLimits(MIN_PIXELS, MAX_PIXELS))
    pipeline.load()
    processor = pipeline.engine._model().processor
    patch = processor.image_processor.patch_size
    merge = processor.image_processor.merge_size
    assert calls[-1]["image_grid_thw"].tolist() == [[1, height // patch, width // patch]]
    image_tokens = int((calls[-1]["input_ids"] == processor.image_token_id).sum())
    assert image_tokens == (width // patch) * (height // patch) // merge**2


def test_dots_ocr_loads_with_the_native_implementation(tmp_path, page, monkeypatch):
    """dots.ocr is not in transformers; pipelines.dots_ocr registers it, so no remote code runs."""
    folder = build_dots_twin(tmp_path / "dots")
    pipeline = load_pipeline("dots_ocr", model_path=str(folder))
    calls = capture_generate(pipeline.engine, monkeypatch)
    pipeline.load()
    loaded = pipeline.engine._model()
    assert type(loaded.model).__module__.startswith("pipelines.dots_ocr")
    result = pipeline.parse_document(page, "layout_all", options=OPTIONS).pages[0]
    assert 0 < result.tokens["generated"] <= MAX_NEW_TOKENS and (result.elements or result.warnings)
    width, height = get_family("dots").model_size(*page.size, ImageLimits(MIN_PIXELS, MAX_PIXELS))
    patch = loaded.processor.image_processor.patch_size
    assert calls[-1]["image_grid_thw"].tolist() == [[1, height // patch, width // patch]]


def test_dots_remote_code_is_an_explicit_opt_in(tmp_path):
    """remote_code=True takes the checkpoint's own classes (auto_map) instead of the native ones;
    a folder without that code gives a clear load error, not a traceback."""
    folder = build_dots_twin(tmp_path / "dots")
    assert json.loads((folder / "config.json").read_text())["auto_map"]["AutoConfig"]
    pipeline = load_pipeline("dots_ocr", model_path=str(folder), remote_code=True)
    with pytest.raises(PipelineError) as error:
        pipeline.load()
    assert error.value.code == "weights_unavailable" and "lacks files the model needs" in error.value.message
    assert "configuration_dots.py" in error.value.message
    # Not for other models: the allowlist decides, whatever the option says.
    assert not resolve_source(get_spec("qwen2_vl_2b"), model_path=str(folder)).trust_remote_code


def test_extract_text_only_is_the_text_only_markdown(twin_root, page):
    pipeline = load_pipeline("glm_ocr", model_path=twin_dir("glm_ocr", twin_root), **ENGINE_LIMITS)
    text = pipeline.extract_text_only(page)
    assert isinstance(text, str) and text
    assert text == pipeline.parse_document(page, "text_only").markdown  # greedy: the same answer


def test_inference_sends_the_prompt_with_the_page(twin_root, page, monkeypatch):
    pipeline = load_pipeline(CHAT_TWIN, model_path=twin_dir(CHAT_TWIN, twin_root), **ENGINE_LIMITS)
    calls = capture_generate(pipeline.engine, monkeypatch)
    answer = pipeline.inference(page, "What is the title of this report?")
    assert isinstance(answer, str)
    prompt = decoded_prompt(pipeline.engine, calls[-1])
    assert "What is the title of this report?" in prompt
    assert prompt.index("<|vision_start|>") < prompt.index("What is the title")
    assert calls[-1]["max_new_tokens"] == MAX_NEW_TOKENS


def test_chat_sends_the_whole_history(twin_root, page, monkeypatch):
    pipeline = load_pipeline(CHAT_TWIN, model_path=twin_dir(CHAT_TWIN, twin_root), **ENGINE_LIMITS)
    calls = capture_generate(pipeline.engine, monkeypatch)
    pipeline.load()
    processor = pipeline.engine._model().processor
    first = [{"role": "user", "content": "Which river does the report cover?"}]
    first_answer = pipeline.chat(page, first)
    assert isinstance(first_answer, str)
    history = first + [
        {"role": "assistant", "content": "The report covers the river by the old mill."},
        # Gradio / OpenAI content parts; a typed control token must stay plain text.
        {"role": "user", "content": [{"type": "text", "text": "How many sites? <|image_pad|>"}]},
    ]
    pipeline.chat(page, history)
    prompt = decoded_prompt(pipeline.engine, calls[-1])
    positions = [prompt.index(text) for text in (
        "<|vision_start|>", "Which river does the report cover?", "The report covers the river by the old mill.",
        "How many sites?")]
    assert positions == sorted(positions)
    assert prompt.endswith("<|im_start|>assistant\n")
    # One image: the first turn's. The user's typed <|image_pad|> is text, not an image slot.
    ids = calls[-1]["input_ids"][0]
    grid = calls[-1]["image_grid_thw"][0].tolist()
    assert int((ids == processor.image_token_id).sum()) == grid[0] * grid[1] * grid[2] // 4
    assert int((ids == processor.tokenizer.convert_tokens_to_ids("<|vision_start|>")).sum()) == 1


def test_chat_stream_yields_chunks_of_the_same_answer(twin_root, page):
    pipeline = load_pipeline(CHAT_TWIN, model_path=twin_dir(CHAT_TWIN, twin_root), **ENGINE_LIMITS)
    messages = [{"role": "user", "content": "Summarise the page."}]
    chunks = list(pipeline.chat(page, messages, stream=True))
    assert len(chunks) > 1 and all(isinstance(c, str) and c for c in chunks)
    assert "".join(chunks).strip() == pipeline.chat(page, messages, stream=False)


def test_non_chat_models_refuse_chat_and_prompts(twin_root, page):
    pipeline = load_pipeline("got_ocr2", model_path=twin_dir("got_ocr2", twin_root))
    with pytest.raises(EngineCapabilityError) as error:
        pipeline.chat(page, [{"role": "user", "content": "hi"}])
    assert error.value.code == "cannot_chat"
    with pytest.raises(EngineCapabilityError) as error:
        pipeline.engine.chat(load_page(page), [{"role": "user", "content": "hi"}])
    assert error.value.code == "cannot_chat"


def load_page(image):
    from pipelines import load_document

    return load_document(image).pages[0]


REGION = (120, 160, 900, 400)  # page pixels on the 1240 x 1754 page


def test_got_region_goes_to_the_processor_as_a_box(twin_root, page, monkeypatch):
    pipeline = load_pipeline("got_ocr2", model_path=twin_dir("got_ocr2", twin_root))
    calls = capture_generate(pipeline.engine, monkeypatch)
    result = pipeline.parse_document(page, "region_text", options=ParseOptions(
        max_new_tokens=MAX_NEW_TOKENS, region=REGION)).pages[0]
    # GOT's processor writes the box on its 0-1000 scale: int(120 / 1240 * 1000) = 96, and so on.
    assert "[96, 91, 725, 228] OCR: " in decoded_prompt(pipeline.engine, calls[-1])
    assert [e.bbox for e in result.elements] == [REGION]


def test_florence_and_qwen2_vl_write_the_region_into_the_prompt(twin_root, page, monkeypatch):
    florence = load_pipeline("florence2", model_path=twin_dir("florence2", twin_root))
    calls = capture_generate(florence.engine, monkeypatch)
    florence.parse_document(page, "region_text", options=ParseOptions(max_new_tokens=MAX_NEW_TOKENS, region=REGION))
    # The processor expands <REGION_TO_OCR><loc_..> into its question with the location tokens.
    prompt = decoded_prompt(florence.engine, calls[-1])
    assert "What text is in the region" in prompt and "<loc_96><loc_91><loc_725><loc_228>" in prompt

    qwen = load_pipeline("qwen2_vl_2b", model_path=twin_dir("qwen2_vl_2b", twin_root))
    calls = capture_generate(qwen.engine, monkeypatch)
    result = qwen.parse_document(page, "region_text", options=ParseOptions(
        min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, max_new_tokens=MAX_NEW_TOKENS, region=REGION)).pages[0]
    # 0-1000 relative, rounded half up: 120 / 1240 * 1000 = 96.8 -> 97.
    assert "<|box_start|>(97,91),(726,228)<|box_end|>" in decoded_prompt(qwen.engine, calls[-1])
    assert all(e.bbox == REGION for e in result.elements)


def test_free_prompt_mode_sends_the_users_prompt(twin_root, page, monkeypatch):
    pipeline = load_pipeline(CHAT_TWIN, model_path=twin_dir(CHAT_TWIN, twin_root))
    calls = capture_generate(pipeline.engine, monkeypatch)
    result = pipeline.parse_document(page, "free_prompt", options=ParseOptions(
        min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, max_new_tokens=MAX_NEW_TOKENS,
        prompt="List the sampling sites.")).pages[0]
    assert "List the sampling sites." in decoded_prompt(pipeline.engine, calls[-1])
    assert result.tokens["generated"] > 0 and result.mode == "free_prompt"


def test_modes_that_need_input_say_so(twin_root, page):
    pipeline = load_pipeline("got_ocr2", model_path=twin_dir("got_ocr2", twin_root))
    with pytest.raises(PipelineError) as error:
        pipeline.parse_document(page, "region_text", options=OPTIONS)
    assert error.value.code == "mode_needs_input" and "region" in error.value.message


def test_streamed_text_stop_and_time_limit(twin_root, page):
    pipeline = load_pipeline("qwen3_vl_2b", model_path=twin_dir("qwen3_vl_2b", twin_root))
    pieces: list[str] = []
    result = pipeline.parse_document(page, "text_only", options=dataclasses.replace(OPTIONS, on_text=pieces.append))
    assert len(pieces) > 1 and "".join(pieces).strip() == result.pages[0].raw_output

    stop = threading.Event()

    def stop_after_first(text: str) -> None:
        stop.set()

    stopped = pipeline.parse_document(
        page, "text_only", options=dataclasses.replace(OPTIONS, on_text=stop_after_first, stop=stop)).pages[0]
    assert stopped.tokens["generated"] < MAX_NEW_TOKENS
    assert any("stopped on request" in w for w in stopped.warnings)

    timed = pipeline.parse_document(page, "text_only", options=dataclasses.replace(OPTIONS, time_limit_s=1e-6)).pages[0]
    assert timed.tokens["generated"] == 1
    assert any("time limit" in w for w in timed.warnings)


def test_the_generate_path_runs_one_generation_at_a_time(twin_root, page, monkeypatch):
    # decoding="generate": transformers' own loop, which cannot share a batch (the fast path's
    # batching is tested in tests/test_fast_decode.py).
    pipeline = load_pipeline("glm_ocr", model_path=twin_dir("glm_ocr", twin_root), decoding="generate")
    pipeline.load()
    model = pipeline.engine._model().model
    original = model.generate
    running, peak = [0], [0]
    guard = threading.Lock()

    def counting(*args, **kwargs):
        with guard:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            return original(*args, **kwargs)
        finally:
            with guard:
                running[0] -= 1

    monkeypatch.setattr(model, "generate", counting)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(pipeline.parse_document(page, options=OPTIONS)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3 and peak[0] == 1
    assert len({r.pages[0].raw_output for r in results}) == 1  # greedy: same page, same answer


def test_load_unload_and_memory(twin_root):
    engine = TransformersEngine(get_spec("florence2"), model_path=twin_dir("florence2", twin_root))
    assert engine.memory_bytes() == 0
    assert engine.load() > 0 and engine.load() == 0.0
    engine.load()
    model = engine._model().model
    expected = sum(p.numel() * p.element_size() for p in [*model.parameters(), *model.buffers()])
    assert engine.memory_bytes() == expected > 0
    engine.unload()
    assert engine.memory_bytes() == 0 and engine._loaded is None


def test_loading_never_swaps_in_kernels_from_the_hub(twin_root):
    # transformers kernelizes by default when `kernels` is installed: on CUDA that downloads code
    # at load time, and offline it failed every load on a GPU (reported as missing weights).
    model = load_model(resolve_source(get_spec("qwen2_5_vl_3b"), twin_dir("qwen2_5_vl_3b", twin_root)), "cpu").model
    assert model.use_kernels is False


def test_a_cuda_load_keeps_attention_off_cudnn(twin_root, monkeypatch):
    # cuDNN attention builds a graph for every new sequence length: on an H200 that tripled the
    # cost of a generated token. Loading for CUDA switches it off (the load itself fails here).
    import torch

    called = []
    monkeypatch.setattr(hf_loading, "avoid_cudnn_attention", lambda: called.append(True))
    source = resolve_source(get_spec("qwen2_5_vl_3b"), twin_dir("qwen2_5_vl_3b", twin_root))
    with contextlib.suppress(Exception):
        load_model(source, "cuda")
    assert called == [True]
    load_model(source, "cpu")
    assert called == [True]
    monkeypatch.undo()
    enabled = torch.backends.cuda.cudnn_sdp_enabled()
    try:
        hf_loading.avoid_cudnn_attention()
        assert torch.backends.cuda.cudnn_sdp_enabled() is False
        assert torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.mem_efficient_sdp_enabled()
    finally:
        torch.backends.cuda.enable_cudnn_sdp(enabled)


def test_model_dirs_environment_variable_points_at_a_folder(twin_root, monkeypatch):
    folder = twin_dir("florence2", twin_root)
    monkeypatch.setenv(MODEL_DIRS_ENV, f"other=/nowhere, florence2={folder}")
    source = resolve_source(get_spec("florence2"))
    assert (source.location, source.local, source.hub_id) == (folder, True, "florence-community/Florence-2-large")
    assert not source.trust_remote_code


def test_missing_local_folder_says_how_to_get_the_weights(tmp_path, page):
    missing = tmp_path / "no-such-folder"
    pipeline = load_pipeline("qwen2_vl_2b", model_path=str(missing))
    with pytest.raises(WeightsUnavailableError) as error:
        pipeline.parse_document(page, options=OPTIONS)
    message = error.value.message
    assert error.value.code == "weights_unavailable" and error.value.status == 503
    assert str(missing) in message and "does not exist" in message
    assert "hf download Qwen/Qwen2-VL-2B-Instruct" in message and "huggingface-cli download" in message
    assert "model_path=" in message and MODEL_DIRS_ENV in message


def test_offline_hub_id_not_in_cache_says_how_to_get_the_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv(MODEL_DIRS_ENV, raising=False)
    spec = dataclasses.replace(get_spec("qwen2_vl_2b"), hub_id="chatvlmllm-tests/no-such-model")
    with pytest.raises(WeightsUnavailableError) as error:
        TransformersEngine(spec).load()
    message = error.value.message
    assert error.value.code == "weights_unavailable"
    assert "chatvlmllm-tests/no-such-model" in message and "HF_HUB_OFFLINE" in message
    assert "hf download chatvlmllm-tests/no-such-model" in message and "--local-dir" in message
    # dots.ocr takes the same path (allowlisted for its own code, used when no native one is registered).
    engine = TransformersEngine(get_spec("dots_ocr"))
    assert engine.source.trust_remote_code
    with pytest.raises(WeightsUnavailableError) as error:
        engine.load()
    assert "hf download rednote-hilab/dots.ocr" in error.value.message


def point_hub_at(monkeypatch, endpoint: str, cache) -> None:
    """huggingface_hub downloading from `endpoint` into an empty `cache`, HF_HUB_OFFLINE unset, a
    short probe, nothing remembered from other tests."""
    from huggingface_hub import constants

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", MODEL_DIRS_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    # huggingface_hub read these at import; it (and transformers) look them up on its constants module.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_loading, "HUB_PROBE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(hf_loading, "_hub_down_until", {})


class SilentHub(HangingServer):
    """A hub that accepts connections and reads what is asked (request lines), answering nothing."""

    def __init__(self):
        self.requests: list[str] = []
        super().__init__()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.listener.accept()
                self.connections.append(connection)
                threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection) -> None:
        with contextlib.suppress(OSError):
            if line := connection.makefile("rb").readline().decode("latin-1").strip():
                self.requests.append(line)

    def probes(self, expected: int) -> int:
        """Requests for the endpoint itself (the probe), once `expected` have come (or 10 s passed).
        Not counted: huggingface_hub's own once-per-process GET /api/agent-harnesses."""
        def count() -> int:
            return sum(r.split()[1] == "/" for r in self.requests)

        deadline = time.monotonic() + 10
        while count() < expected and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)  # room for one more that should not come
        return count()


@pytest.fixture
def silent_hub(monkeypatch, tmp_path):
    hub = SilentHub()
    point_hub_at(monkeypatch, f"http://127.0.0.1:{hub.port}", tmp_path / "hub-cache")
    yield hub
    hub.close()


def test_an_unreachable_hub_fails_within_seconds_and_is_remembered(silent_hub):
    endpoint = f"http://127.0.0.1:{silent_hub.port}"
    started = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as error:
        TransformersEngine(get_spec("qwen2_vl_2b")).load()
    assert time.perf_counter() - started < 3  # the 0.5 s probe, not ~28 s of hub retries
    message = error.value.message
    assert error.value.code == "weights_unavailable" and error.value.status == 503
    assert "Qwen/Qwen2-VL-2B-Instruct" in message and f"the hub ({endpoint}) cannot be reached" in message
    assert "hf download Qwen/Qwen2-VL-2B-Instruct" in message and MODEL_DIRS_ENV in message
    assert silent_hub.probes(1) == 1
    # Within the memory window, another load fails at once without probing again.
    started = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as error:
        TransformersEngine(get_spec("qwen2_5_vl_3b"), preset="olmocr2").load()
    assert time.perf_counter() - started < 0.5 and "hf download allenai/olmOCR-2-7B-1025" in error.value.message
    assert silent_hub.probes(1) == 1
    hf_loading._hub_down_until.clear()  # the window has passed: the next load probes again
    with pytest.raises(WeightsUnavailableError):
        TransformersEngine(get_spec("qwen2_vl_2b")).load()
    assert silent_hub.probes(2) == 2


def test_a_hub_that_refuses_connections_fails_at_once(monkeypatch, tmp_path):
    point_hub_at(monkeypatch, f"http://127.0.0.1:{free_port()}", tmp_path / "hub-cache")  # nothing listens
    started = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as error:
        TransformersEngine(get_spec("dots_ocr")).load()
    assert time.perf_counter() - started < 3
    assert error.value.status == 503 and "hf download rednote-hilab/dots.ocr" in error.value.message


def test_local_folders_and_cached_weights_load_while_the_hub_is_unreachable(silent_hub, twin_root, monkeypatch,
                                                                            tmp_path):
    folder = twin_dir("qwen2_vl_2b", twin_root)
    monkeypatch.setenv(MODEL_DIRS_ENV, f"qwen2_vl_2b={folder}")
    TransformersEngine(get_spec("qwen2_vl_2b")).load()
    assert silent_hub.probes(0) == 0 and silent_hub.requests == []  # a local folder never asks the hub
    monkeypatch.delenv(MODEL_DIRS_ENV)
    # The same weights in the Hugging Face cache (silent_hub's), as `hf download` leaves them.
    repo = tmp_path / "hub-cache" / "models--chatvlmllm-tests--cached-twin"
    shutil.copytree(folder, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    spec = dataclasses.replace(get_spec("qwen2_vl_2b"), hub_id="chatvlmllm-tests/cached-twin")
    started = time.perf_counter()
    TransformersEngine(spec).load()
    # Straight from the cache: without the probe, each file waited through hub retries (minutes).
    assert time.perf_counter() - started < 30
    assert silent_hub.probes(1) == 1


def test_preset_selects_another_checkpoint(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(MODEL_DIRS_ENV, raising=False)
    source = resolve_source(get_spec("qwen2_5_vl_3b"), preset="nanonets_ocr2")
    assert (source.location, source.local, source.name) == ("nanonets/Nanonets-OCR2-3B", False, "nanonets_ocr2")
    with pytest.raises(PipelineError) as error:
        resolve_source(get_spec("qwen2_5_vl_3b"), preset="nope")
    assert error.value.code == "unknown_preset" and "olmocr2" in error.value.message


def test_hub_errors_become_actionable_messages():
    import httpx
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    def hub_error(kind, status):
        url = "https://huggingface.co/rednote-hilab/dots.ocr/resolve/main/config.json"
        return kind(f"{status} Client Error", response=httpx.Response(status, request=httpx.Request("HEAD", url)))

    source = ModelSource("rednote-hilab/dots.ocr", "rednote-hilab/dots.ocr", False, "dots_ocr",
                         "load_pipeline('dots_ocr', model_path={folder!r})")
    for cause, fragment in ((hub_error(GatedRepoError, 403), "gated"),
                            (hub_error(RepositoryNotFoundError, 404), "no such repository")):
        wrapped = OSError("transformers could not load it")
        wrapped.__cause__ = cause
        error = translate_load_error(wrapped, source)
        assert isinstance(error, WeightsUnavailableError) and fragment in error.message
        assert "hf download rednote-hilab/dots.ocr" in error.message
    broken = translate_load_error(AttributeError("module has no attribute 'X'"), source)
    assert broken.code == "model_load_failed" and "AttributeError" in broken.message and "vLLM" in broken.message


def test_remote_code_runs_only_for_allowlisted_checkpoints(tmp_path):
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(
        {"model_type": "someone_elses_vlm", "auto_map": {"AutoModelForCausalLM": "modeling.Model"}}))
    engine = TransformersEngine(get_spec("qwen2_vl_2b"), model_path=str(folder))
    with pytest.raises(PipelineError) as error:
        engine.load()
    assert error.value.code == "remote_code_refused"
    assert resolve_source(get_spec("dots_ocr"), model_path=str(folder)).trust_remote_code
    assert not resolve_source(get_spec("qwen2_vl_2b"), model_path=str(folder)).trust_remote_code
