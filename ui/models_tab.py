"""The Models tab: which models are loaded, and unloading one."""
from __future__ import annotations

import gradio as gr

from pipelines.model_manager import MANAGER


def loaded_models_rows() -> list[list]:
    return [[m.key, round(m.memory_bytes / 2**20, 1), round(m.idle_s), m.decoding] for m in MANAGER.loaded()]


def refresh_loaded():
    return loaded_models_rows(), gr.update(choices=[m.key for m in MANAGER.loaded()], value=None)


def unload_model(name: str | None):
    if not name:
        message = "Pick a loaded model to unload."
    else:
        message = f"Unloaded **{name}**." if MANAGER.unload(name) else f"**{name}** was not loaded."
    return message, *refresh_loaded()


def build_models_tab(demo: gr.Blocks) -> None:
    gr.Markdown("Models load on first use and stay loaded within the memory budget; the least "
                "recently used one is unloaded first.")
    loaded_table = gr.Dataframe(headers=["model", "memory (MB)", "idle (s)", "decoding"],
                                interactive=False, label="Loaded models", elem_id="loaded-models")
    with gr.Row():
        unload_choice = gr.Dropdown([], label="Loaded model to unload", allow_custom_value=True)
        unload_button = gr.Button("Unload")
        refresh_button = gr.Button("Refresh")
    unload_status = gr.Markdown()
    refresh_button.click(refresh_loaded, None, [loaded_table, unload_choice], api_visibility="private")
    demo.load(refresh_loaded, None, [loaded_table, unload_choice], api_visibility="private")
    unload_button.click(unload_model, unload_choice, [unload_status, loaded_table, unload_choice],
                        api_name="unload_model")
