"""The Models tab: the whole catalogue with where each model's weights are (bundled, on disk or a
download, and its size), downloading one (an operator action), the loaded models and unloading
one (an operator action too)."""
from __future__ import annotations

import hmac
import os

import gradio as gr

from pipelines import PipelineError, get_spec, list_models
from pipelines.engines.hf_loading import VLM_INSTALL, download_gb, hub_reachable, missing_packages, weights_status
from pipelines.model_manager import MANAGER

CATALOGUE_HEADERS = ["model", "name", "engine", "weights", "runs here", "download (GB)", "get it elsewhere with"]


def download_command(spec) -> str:
    return f"hf download {spec.hub_id}" if spec.hub_id and spec.engine != "classic" else ""


def catalogue_rows() -> list[list]:
    rows = []
    for spec in list_models():
        status = weights_status(spec)
        size = download_gb(spec)
        missing = missing_packages(spec)
        rows.append([spec.key, spec.label, spec.engine, status,
                     f"after {VLM_INSTALL} (missing: {', '.join(missing)})" if missing else "yes",
                     "" if size is None else round(size, 2), download_command(spec) if status == "download" else ""])
    return rows


def download_model(name: str | None, token: str | None = None, progress=gr.Progress(track_tqdm=True)):
    """Fetch a model's weights into the Hugging Face cache, with a progress bar; where the hub
    cannot be reached, the error gives the command to run on a machine that can."""
    if not unload_allowed(token):
        raise gr.Error("Downloading weights is an operator action: it needs the admin token "
                       f"(set {ADMIN_TOKEN_ENV} when starting the app).")
    try:
        spec = get_spec(name or "")
    except PipelineError as error:
        raise gr.Error(error.message) from None
    if not spec.hub_id or spec.engine == "classic":
        return f"**{spec.key}** needs no download: its weights ship with the app.", catalogue_rows()
    if weights_status(spec) != "download":
        return f"**{spec.key}** is already on disk.", catalogue_rows()
    if not hub_reachable():
        raise gr.Error(f"The Hugging Face hub cannot be reached from this server. On a machine that can, run "
                       f"`{download_command(spec)} --local-dir DIR`, copy DIR here and name it in "
                       f"CHATVLMLLM_MODEL_DIRS ({spec.key}=DIR).")
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo_id=spec.hub_id)
    except Exception as error:  # noqa: BLE001 - network, disk, permissions: say which and what to do
        raise gr.Error(f"Downloading {spec.hub_id} failed ({type(error).__name__}: {str(error)[:200]}). "
                       f"Elsewhere: `{download_command(spec)}`.") from None
    return f"Downloaded **{spec.key}** ({spec.hub_id}).", catalogue_rows()


def loaded_models_rows() -> list[list]:
    return [[m.key, round(m.memory_bytes / 2**20, 1), round(m.idle_s), m.decoding] for m in MANAGER.loaded()]


def refresh_loaded():
    return loaded_models_rows(), gr.update(choices=[m.key for m in MANAGER.loaded()], value=None)


ADMIN_TOKEN_ENV = "CHATVLMLLM_ADMIN_TOKEN"


def unload_allowed(token: str | None) -> bool:
    """Unloading evicts models other users are using, so only the operator may: with the token
    set in CHATVLMLLM_ADMIN_TOKEN. Without one configured nobody can (every Gradio event is
    callable by anyone who can reach the page, hidden or not)."""
    expected = os.environ.get(ADMIN_TOKEN_ENV, "")
    return bool(expected) and hmac.compare_digest((token or "").encode(), expected.encode())


def unload_model(name: str | None, token: str | None = None):
    if not unload_allowed(token):
        raise gr.Error("Unloading models is an operator action: it needs the admin token "
                       f"(set {ADMIN_TOKEN_ENV} when starting the app).")
    if not name:
        message = "Pick a loaded model to unload."
    else:
        try:
            unloaded = MANAGER.unload(name)
        except PipelineError as error:  # in use by a request right now
            raise gr.Error(error.message) from None
        message = f"Unloaded **{name}**." if unloaded else f"**{name}** was not loaded."
    return message, *refresh_loaded()


def build_models_tab(demo: gr.Blocks) -> None:
    gr.Markdown("Every model of the catalogue, and where its weights are: **bundled** (in a pip wheel, runs "
                "offline), **local** (already on disk: the Hugging Face cache or CHATVLMLLM_MODEL_DIRS) or "
                "**download** (fetched on first use, or with the command shown); and whether this install "
                "runs it: local vision-language models need the VLM packages (torch, transformers).")
    catalogue = gr.Dataframe(headers=CATALOGUE_HEADERS, interactive=False, label="Catalogue", elem_id="catalogue")
    operator = bool(os.environ.get(ADMIN_TOKEN_ENV))
    with gr.Row(visible=operator):
        download_choice = gr.Dropdown([s.key for s in list_models() if s.engine != "classic"],
                                      label="Model to download", elem_id="download-choice")
        download_token = gr.Textbox(label="Admin token", type="password", elem_id="download-token")
        download_button = gr.Button("Download", elem_id="download-button")
    download_status = gr.Markdown(elem_id="download-status")
    gr.Markdown("Models load on first use and stay loaded within the memory budget; the least "
                "recently used one is unloaded first.")
    loaded_table = gr.Dataframe(headers=["model", "memory (MB)", "idle (s)", "decoding"],
                                interactive=False, label="Loaded models", elem_id="loaded-models")
    with gr.Row():
        unload_choice = gr.Dropdown([], label="Loaded model to unload", allow_custom_value=True, visible=operator)
        admin_token = gr.Textbox(label="Admin token", type="password", visible=operator, elem_id="admin-token")
        unload_button = gr.Button("Unload", visible=operator)
        refresh_button = gr.Button("Refresh")
    unload_status = gr.Markdown(None if operator else
                                f"Unloading is for the operator (start the app with {ADMIN_TOKEN_ENV} set).")
    refresh_button.click(refresh_loaded, None, [loaded_table, unload_choice], api_visibility="private")
    demo.load(refresh_loaded, None, [loaded_table, unload_choice], api_visibility="private")
    demo.load(catalogue_rows, None, catalogue, api_visibility="private")
    download_button.click(download_model, [download_choice, download_token], [download_status, catalogue],
                          api_visibility="private", concurrency_limit=1)
    unload_button.click(unload_model, [unload_choice, admin_token], [unload_status, loaded_table, unload_choice],
                        api_visibility="private")
