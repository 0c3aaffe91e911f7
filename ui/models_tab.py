"""The Models tab: which models are loaded, and unloading one (an operator action)."""
from __future__ import annotations

import hmac
import os

import gradio as gr

from pipelines import PipelineError
from pipelines.model_manager import MANAGER


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
    gr.Markdown("Models load on first use and stay loaded within the memory budget; the least "
                "recently used one is unloaded first.")
    loaded_table = gr.Dataframe(headers=["model", "memory (MB)", "idle (s)", "decoding"],
                                interactive=False, label="Loaded models", elem_id="loaded-models")
    operator = bool(os.environ.get(ADMIN_TOKEN_ENV))
    with gr.Row():
        unload_choice = gr.Dropdown([], label="Loaded model to unload", allow_custom_value=True, visible=operator)
        admin_token = gr.Textbox(label="Admin token", type="password", visible=operator, elem_id="admin-token")
        unload_button = gr.Button("Unload", visible=operator)
        refresh_button = gr.Button("Refresh")
    unload_status = gr.Markdown(None if operator else
                                f"Unloading is for the operator (start the app with {ADMIN_TOKEN_ENV} set).")
    refresh_button.click(refresh_loaded, None, [loaded_table, unload_choice], api_visibility="private")
    demo.load(refresh_loaded, None, [loaded_table, unload_choice], api_visibility="private")
    unload_button.click(unload_model, [unload_choice, admin_token], [unload_status, loaded_table, unload_choice],
                        api_visibility="private")
