"""Where a model's weights come from (hub id or local folder) and loading them with transformers.

Every way weights can be missing (no network, HF_HUB_OFFLINE, gated or unknown repository, a local
folder that is not there) becomes a WeightsUnavailableError that says which id, how to download it
and how to point at a local copy, instead of a traceback from deep inside huggingface_hub.

A hub that cannot be reached is found by one short probe before loading, and remembered for a while:
left to huggingface_hub, every file would cost five retries with backoff (about 28 s) before an error,
even for weights already in the cache.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..catalogue import ModelSpec
from ..errors import ModelLoadError, PackagesMissingError, PipelineError, WeightsUnavailableError
from .hf_inputs import prompt_style

MODEL_DIRS_ENV = "CHATVLMLLM_MODEL_DIRS"  # "key=/dir,key2=/dir2"
# Checkpoints whose own Python code (auto_map) may run. Nothing else ever gets trust_remote_code.
REMOTE_CODE_ALLOWLIST = frozenset({"rednote-hilab/dots.ocr", "rednote-hilab/dots.mocr"})
# Families with a native implementation in this package: importing it registers the classes with
# transformers' Auto factories, so the published checkpoint loads without running its own code.
NATIVE_PACKAGES = {"dots": "pipelines.dots_ocr"}
# The Auto class a checkpoint's auto_map names, in order of preference (remote-code checkpoints).
REMOTE_AUTO_CLASSES = ("AutoModelForImageTextToText", "AutoModelForCausalLM", "AutoModelForVision2Seq", "AutoModel")
HUB_PROBE_TIMEOUT_S = 3.0  # a reachable hub answers one HEAD well within this
HUB_DOWN_MEMORY_S = 60.0  # loads in this window after a failed probe do not wait for another one
_hub_down_until: dict[str, float] = {}  # endpoint -> time.monotonic() until which it counts as down
_hub_lock = threading.Lock()


@dataclass(frozen=True)
class ModelSource:
    """What from_pretrained gets: a local folder or a hub id, and the id users would download."""

    location: str  # local folder or hub id
    hub_id: str | None  # the repository the weights come from (None: unknown for a bare folder)
    local: bool
    name: str  # the catalogue key, or the preset it was chosen for
    load_call: str  # how a user loads it from a folder: "load_pipeline('key', model_path={folder!r})"

    native: bool = False  # a native implementation is registered: the checkpoint's code is not needed
    remote_code: bool = False  # explicit opt-in: run the checkpoint's own code even where native exists

    @property
    def trust_remote_code(self) -> bool:
        return self.hub_id in REMOTE_CODE_ALLOWLIST and (self.remote_code or not self.native)


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as set now (huggingface_hub reads it once at import; users set it any time)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_endpoint() -> str:
    """Where huggingface_hub downloads from: HF_ENDPOINT as it read it at import."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_reachable() -> bool:
    """Whether the hub answers; after a failed probe, False without probing for HUB_DOWN_MEMORY_S."""
    endpoint = hub_endpoint()
    with _hub_lock:  # concurrent loads wait for one probe rather than each making their own
        if time.monotonic() < _hub_down_until.get(endpoint, 0.0):
            return False
        if _answers(endpoint, HUB_PROBE_TIMEOUT_S):
            _hub_down_until.pop(endpoint, None)
            return True
        _hub_down_until[endpoint] = time.monotonic() + HUB_DOWN_MEMORY_S
        return False


def _answers(url: str, timeout_s: float) -> bool:
    """Any HTTP answer within timeout_s, through huggingface_hub's own session (its proxies and
    settings). In a thread, so that a name lookup that hangs, which no socket timeout bounds, is cut too."""
    from huggingface_hub.utils import get_session

    answered = threading.Event()

    def head() -> None:
        try:
            get_session().head(url, timeout=timeout_s)
            answered.set()
        except Exception:  # noqa: BLE001 - refused, timed out, unknown name, offline mode: all "no"
            pass

    threading.Thread(target=head, name="chatvlmllm-hub-probe", daemon=True).start()
    return answered.wait(timeout_s)


def local_files_only(source: ModelSource) -> bool:
    """from_pretrained's local_files_only: True offline, and for cached weights while the hub cannot
    be reached. Weights that would have to come from an unreachable hub raise at once."""
    if hub_offline():
        return True
    if source.local or hub_reachable():
        return False
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(source.location, "config.json"), str):
        return True
    raise _unavailable(source, f"they are not in the local Hugging Face cache and the hub ({hub_endpoint()}) "
                               "cannot be reached")


def configured_model_dirs() -> dict[str, str]:
    """CHATVLMLLM_MODEL_DIRS parsed: {"qwen2_vl_2b": "/models/qwen2-vl", ...}."""
    dirs: dict[str, str] = {}
    for entry in os.environ.get(MODEL_DIRS_ENV, "").split(","):
        key, sep, directory = entry.partition("=")
        if sep and key.strip() and directory.strip():
            dirs[key.strip()] = os.path.expanduser(directory.strip())
    return dirs


def resolve_source(spec: ModelSpec, model_path: str | os.PathLike | None = None,
                   preset: str | None = None) -> ModelSource:
    """model_path, else a CHATVLMLLM_MODEL_DIRS entry (preset, key or alias), else the hub id."""
    hub_id = spec.hub_id
    name = spec.key
    load_call = f"load_pipeline({spec.key!r}, model_path={{folder!r}})"
    if preset is not None:
        presets = dict(spec.presets)
        if preset not in presets:
            raise PipelineError(
                "unknown_preset",
                f"Model {spec.key!r} has no preset {preset!r}; presets are {sorted(presets) or 'none'}.",
            )
        hub_id, name = presets[preset], preset
        load_call = f"load_pipeline({spec.key!r}, preset={preset!r}, model_path={{folder!r}})"
    if model_path is None:
        dirs = configured_model_dirs()
        names = (preset,) if preset is not None else (spec.key, *spec.aliases)
        model_path = next((dirs[n] for n in names if n in dirs), None)
    if model_path is not None:
        directory = Path(model_path).expanduser()
        if not (directory / "config.json").is_file():
            what = "does not exist" if not directory.exists() else "has no config.json"
            raise WeightsUnavailableError(
                "weights_unavailable",
                f"The local model folder {str(directory)!r} for {name!r} {what}. "
                + download_advice(hub_id, name, load_call, str(directory)),
            )
        return ModelSource(str(directory), hub_id, True, name, load_call)
    if not hub_id:
        raise WeightsUnavailableError(
            "weights_unavailable",
            f"Model {name!r} has no hub id: pass model_path=... to load_pipeline or set "
            f"{MODEL_DIRS_ENV}='{name}=/path/to/weights'.",
        )
    return ModelSource(hub_id, hub_id, False, name, load_call)


def download_advice(hub_id: str | None, name: str, load_call: str, directory: str | None = None) -> str:
    folder = directory or f"/models/{name}"
    download = (
        f"Download the weights once on a machine with internet access: `hf download {hub_id}` "
        f"(older clients: `huggingface-cli download {hub_id}`) fills the Hugging Face cache (HF_HOME), "
        f"or `hf download {hub_id} --local-dir {folder}` writes a folder. "
        if hub_id else "Copy the model's files (config.json, weights, processor files) into a folder. "
    )
    app = f"`python app.py --model-dir {name}={folder}`, " if "preset=" not in load_call else ""
    return download + (
        f"Then point at the folder with {load_call.format(folder=folder)}, {app}"
        f"or {MODEL_DIRS_ENV}='{name}={folder}'."
    )


def check_remote_code(source: ModelSource) -> None:
    """A folder that only its own Python code can load is refused unless its checkpoint is allowlisted.

    Folders of natively supported models that still carry an auto_map load with the native classes.
    """
    if not source.local or source.trust_remote_code:
        return
    try:
        config = json.loads((Path(source.location) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # from_pretrained reports a broken config itself
    from transformers import CONFIG_MAPPING

    if config.get("auto_map") and config.get("model_type") not in CONFIG_MAPPING:
        raise PipelineError(
            "remote_code_refused",
            f"The model folder {source.location!r} needs to run its own Python code (auto_map in "
            f"config.json), which is allowed only for {sorted(REMOTE_CODE_ALLOWLIST)}.",
        )


def translate_load_error(error: Exception, source: ModelSource) -> PipelineError:
    """An exception from from_pretrained -> an error a user can act on."""
    from huggingface_hub import errors as hub_errors

    chain = _exception_chain(error)
    text = " ".join(str(e) for e in chain)
    name = source.name

    if any(isinstance(e, hub_errors.GatedRepoError) for e in chain):
        return _unavailable(
            source,
            "the repository is gated. Accept its licence on its Hugging Face page, then log in with "
            "`hf auth login` or set HF_TOKEN"
        )
    if any(isinstance(e, hub_errors.RepositoryNotFoundError) for e in chain) or "not a valid model identifier" in text:
        return _unavailable(
            source, "the Hugging Face hub has no such repository, or it is private (check the id and HF_TOKEN)")
    offline = hub_offline() or "outgoing traffic has been disabled" in text
    if any(isinstance(e, (hub_errors.LocalEntryNotFoundError, hub_errors.HfHubHTTPError, ConnectionError))
           for e in chain) or "couldn't connect" in text or "offline mode" in text:
        return _unavailable(
            source,
            "HF_HUB_OFFLINE is set and they are not in the local Hugging Face cache" if offline
            else "they are not in the local Hugging Face cache and the hub cannot be reached"
        )
    if source.local and isinstance(error, OSError) and "does not appear to have" in text:
        return _unavailable(
            source, f"the folder {source.location!r} lacks files the model needs ({_first_line(error)})")
    hint = (" This checkpoint's own code targets older transformers releases; serving it with vLLM "
            "(load_pipeline(..., backend='openai', base_url=...)) avoids it." if source.trust_remote_code else "")
    return ModelLoadError(
        "model_load_failed",
        f"Loading {name!r} from {source.location!r} failed: {type(error).__name__}: {_first_line(error)}.{hint}",
    )


def _unavailable(source: ModelSource, reason: str) -> WeightsUnavailableError:
    return WeightsUnavailableError(
        "weights_unavailable",
        f"The weights of {source.name!r} ({source.hub_id or source.location}) are not available: {reason}. "
        + download_advice(source.hub_id, source.name, source.load_call),
    )


def _exception_chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:500] if lines else type(error).__name__


@dataclass
class LoadedModel:
    model: object
    processor: object
    device: str
    dtype: object
    style: str  # how it is prompted (see hf_inputs)


def pick_device(device: str | None) -> str:
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def avoid_cudnn_attention() -> None:
    """Keep PyTorch's SDPA off its cuDNN backend (it keeps flash, memory-efficient and math).

    On Hopper GPUs PyTorch picks cuDNN attention, which builds a cuDNN graph for every new
    sequence length: every decode step of `generate` (the KV cache grows by one) and every
    page's prefill and vision tower (each page size is new). On an H200 that made `generate`
    cost 102 ms a token on lengths met for the first time and 32 ms on the same lengths again
    (bench/results/generate_overhead_h200.json). Process-wide, like the models it serves.
    """
    import torch

    torch.backends.cuda.enable_cudnn_sdp(False)


def register_native(family: str) -> bool:
    """Register this package's own implementation of a family's model, if it has one."""
    module = NATIVE_PACKAGES.get(family)
    if module is None:
        return False
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def load_model(source: ModelSource, device: str | None = None) -> LoadedModel:
    """Processor and model from a source: bf16 on CUDA, fp32 on CPU, sdpa attention where supported."""
    import torch
    import transformers
    from transformers import AutoConfig, AutoProcessor

    check_remote_code(source)
    offline = local_files_only(source)
    device = pick_device(device)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    if device.startswith("cuda"):
        avoid_cudnn_attention()
    common = {"trust_remote_code": source.trust_remote_code, "local_files_only": offline}
    try:
        if source.trust_remote_code and source.native:
            # Natively registered classes win over auto_map in the Auto factories, so the opt-in
            # fallback takes the checkpoint's own classes directly.
            config, auto_class = _checkpoint_classes(source.location, offline)
            common = {"local_files_only": offline}
        else:
            config = AutoConfig.from_pretrained(source.location, **common)
            auto_class = _auto_class(config, transformers, source.trust_remote_code)
        processor = AutoProcessor.from_pretrained(source.location, **common)
        placement = {"device_map": {"": device}} if device.startswith("cuda") else {}
        # transformers (5.25 and later, where `kernels` is a dependency) otherwise swaps layers on
        # CUDA for kernels it downloads from the hub at load: code nobody here reviewed, and offline
        # the load fails (seen on an H200 with HF_HUB_OFFLINE=1, reported as missing weights).
        placement["use_kernels"] = False
        try:
            model = auto_class.from_pretrained(source.location, config=config, dtype=dtype,
                                               attn_implementation="sdpa", **placement, **common)
        except ValueError as error:
            if "sdpa" not in str(error).lower() and "scaled_dot_product" not in str(error):
                raise
            model = auto_class.from_pretrained(source.location, config=config, dtype=dtype, **placement, **common)
    except PipelineError:
        raise
    except Exception as error:  # noqa: BLE001 - every failure becomes an actionable message
        raise translate_load_error(error, source) from error
    if not device.startswith("cuda"):
        model.to(device)
    model.eval()
    style = prompt_style(model.config.model_type, processor)
    return LoadedModel(model, processor, device, dtype, style)


def _checkpoint_classes(location: str, offline: bool):
    """The config and model classes a checkpoint's own code defines (its auto_map)."""
    from transformers import PretrainedConfig
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    config_dict, _ = PretrainedConfig.get_config_dict(location, local_files_only=offline)
    auto_map = config_dict.get("auto_map") or {}
    if "AutoConfig" not in auto_map:
        raise PipelineError("no_remote_code", f"{location!r} ships no code of its own (no auto_map in config.json).")
    config_class = get_class_from_dynamic_module(auto_map["AutoConfig"], location, local_files_only=offline)
    config = config_class.from_pretrained(location, local_files_only=offline)
    name = next((n for n in REMOTE_AUTO_CLASSES if n in auto_map), None)
    if name is None:
        raise PipelineError("no_remote_code", f"{location!r} names no model class in its auto_map.")
    return config, get_class_from_dynamic_module(auto_map[name], location, local_files_only=offline)


def _auto_class(config, transformers, remote_code: bool):
    auto_map = (getattr(config, "auto_map", None) or {}) if remote_code else {}
    for name in REMOTE_AUTO_CLASSES:
        if name in auto_map:
            return getattr(transformers, name)
    return transformers.AutoModelForImageTextToText


# -- what a model needs before it can run (GET /models, the model lists) ---------------------------

# Local VLMs run on these; a CPU-only install (requirements-cpu.txt) leaves them out, since PyPI's
# Linux torch is the multi-GB CUDA build and the default engine needs none of them.
VLM_PACKAGES = ("torch", "torchvision", "transformers", "accelerate")
VLM_INSTALL = "pip install -r requirements-vlm.txt"  # from a checkout; installed as a package: ".[vlm]"


def missing_packages(spec: ModelSpec) -> list[str]:
    """The packages running this model here needs that this install lacks ([]: none). A model the
    operator serves from vLLM/SGLang (CHATVLMLLM_OPENAI_<KEY>_BASE_URLS) needs none of them."""
    from . import default_backend

    if spec.engine == "classic" or default_backend(spec) == "openai":
        return []
    return [name for name in VLM_PACKAGES if not _importable(name)]


def _importable(name: str) -> bool:
    # Found, not imported (importing torch takes seconds): a torch that is there but cannot load
    # still fails later, when the model loads, with that error.
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def require_packages(spec: ModelSpec) -> None:
    """A clear error, before anything loads, where the VLM extra is not installed."""
    missing = missing_packages(spec)
    if missing:
        raise PackagesMissingError(
            "vlm_not_installed",
            f"Running {spec.label} locally needs {', '.join(VLM_PACKAGES)}; missing here: "
            f"{', '.join(missing)} (the CPU-only install leaves them out). Install them with "
            f"`{VLM_INSTALL}` (a GPU makes these models practical), or run the model on a vLLM/SGLang "
            f"server through the openai backend (the Server fields in the UI).")


def readiness(spec: ModelSpec) -> str:
    """Whether a model can run now, for the model lists: "server" (the operator serves it),
    "packages" (the VLM packages are missing here), else its weights_status."""
    from . import default_backend

    if default_backend(spec) == "openai":
        return "server"
    return "packages" if missing_packages(spec) else weights_status(spec)


_download_sizes: dict[str, float | None] = {}
_size_failed_until: dict[str, float] = {}  # hub id -> when to ask again after a failed question
_sizes_lock = threading.Lock()


def weights_status(spec: ModelSpec) -> str:
    """"bundled" (in a pip wheel), "local" (a configured folder or the HF cache holds it) or
    "download" (the first use fetches it from the hub)."""
    if spec.engine == "classic":
        return "bundled"
    configured = configured_model_dirs()
    if any(Path(configured[name]).is_dir() for name in (spec.key, *spec.aliases) if name in configured):
        return "local"
    if spec.hub_id:
        from huggingface_hub import try_to_load_from_cache

        if isinstance(try_to_load_from_cache(spec.hub_id, "config.json"), str):
            return "local"
    return "download"


def known_download_gb(spec: ModelSpec) -> float | None:
    """download_gb's answer where it is already known, without asking the hub."""
    with _sizes_lock:
        return _download_sizes.get(spec.hub_id) if spec.hub_id else None


def download_gb(spec: ModelSpec) -> float | None:
    """The checkpoint's weight files in GB, as the hub lists them; None where it cannot be asked
    (offline, or unreachable: then known within the probe's few seconds). The hub's answers are
    remembered; a failed question only for HUB_DOWN_MEMORY_S, so that a hub down at start is asked
    again later, and GET /models, a public route, never makes the app ask the hub on every call."""
    if spec.engine == "classic" or not spec.hub_id:
        return 0.0 if spec.engine == "classic" else None
    with _sizes_lock:
        if spec.hub_id in _download_sizes:
            return _download_sizes[spec.hub_id]
        if time.monotonic() < _size_failed_until.get(spec.hub_id, 0.0):
            return None
    if hub_offline() or not hub_reachable():
        return None
    from huggingface_hub import HfApi

    try:
        info = HfApi().model_info(spec.hub_id, files_metadata=True, timeout=HUB_PROBE_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - a size we cannot learn now is shown as unknown
        with _sizes_lock:
            _size_failed_until[spec.hub_id] = time.monotonic() + HUB_DOWN_MEMORY_S
        return None
    weights = [s.size or 0 for s in info.siblings or [] if s.rfilename.endswith((".safetensors", ".bin"))]
    size = round(sum(weights) / 1e9, 2) if weights else None
    with _sizes_lock:
        _download_sizes[spec.hub_id] = size
    return size
