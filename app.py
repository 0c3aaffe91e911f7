"""ChatVLMLLM: a Gradio playground for reading documents, with a REST API in the same process.

Tabs: Parse (layout, Markdown, JSON), Chat (about a page), Compare (one page through 2-4 runs),
Region (text of a marked rectangle), Evaluate (scores on tests and ground truth), Models. This module only wires the tabs of `ui` together and
serves them; the logic lives in `pipelines`.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import threading

with contextlib.suppress(ImportError):  # on a ZeroGPU Space, `spaces` must patch torch before it loads
    import spaces  # noqa: F401

import gradio as gr

from pipelines import Limits
from pipelines.api import create_rest_app
from pipelines.http_guards import header_timeout_protocol
from ui import storage
from ui.chat_tab import build_chat_tab, chat_api
from ui.common import CSS, MODEL_DIRS_ENV, MODEL_EVENTS, ModelLists, learn_download_sizes, model_event, share_upload
from ui.compare_tab import build_compare_tab, compare_api
from ui.evaluate_tab import build_evaluate_tab
from ui.models_tab import build_models_tab
from ui.parse_tab import build_parse_tab
from ui.region_tab import build_region_tab, region_text_api


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="ChatVLMLLM") as demo:
        gr.Markdown("# ChatVLMLLM\nRead scanned pages, photos and PDFs: layout boxes, Markdown and JSON; chat "
                    "about a page, compare models, read a marked region.")
        state = gr.State(None)
        model_lists = ModelLists()
        with gr.Tab("Parse"):
            upload, server = build_parse_tab(model_lists, state)
        with gr.Tab("Chat"):
            chat_file = build_chat_tab(model_lists, state, server)
        with gr.Tab("Compare"):
            compare_file = build_compare_tab(model_lists, server)
        with gr.Tab("Region"):
            region_file = build_region_tab(model_lists, server)
        with gr.Tab("Evaluate"):
            build_evaluate_tab(model_lists)
        with gr.Tab("Models"):
            build_models_tab(demo)
        model_lists.refresh_on_load(demo)
        upload.change(share_upload, upload, [chat_file, compare_file, region_file], api_visibility="private")
        # Endpoints for gradio_client (the UI's own events above are private).
        gr.api(model_event(chat_api), api_name="chat", **MODEL_EVENTS)
        gr.api(model_event(compare_api), api_name="compare", **MODEL_EVENTS)
        gr.api(model_event(region_text_api), api_name="region_text", **MODEL_EVENTS)
    return demo


def create_app():
    """The FastAPI app: REST routes plus the Gradio UI mounted at /."""
    demo = build_demo().queue(max_size=32, default_concurrency_limit=2)
    from pipelines.engines.hf_loading import hub_offline

    if not hub_offline():  # the model lists name download sizes once the hub has told them
        threading.Thread(target=learn_download_sizes, name="learn-download-sizes", daemon=True).start()
    limits = Limits()
    rest = create_rest_app(limits, make_room=storage.make_room)
    storage.pin_existing()  # the examples Gradio cached while the UI was built stay
    app = gr.mount_gradio_app(rest, demo, path="/", max_file_size=limits.max_bytes, css=CSS)
    # Gradio accepts a file input only from its upload folder once the Blocks counts as launched,
    # which launch() marks and mount_gradio_app does not: without this, any client could name any
    # server file as an input (FileData.path) and have the handlers read it.
    demo.has_launched = True
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="interface to listen on (default 127.0.0.1; 0.0.0.0 exposes it to your network)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--model-dir", action="append", default=[], metavar="KEY=DIR",
                        help="load a catalogue model from a local folder instead of the hub "
                             "(repeatable; same as CHATVLMLLM_MODEL_DIRS='key=dir,key2=dir2')")
    args = parser.parse_args()
    if args.model_dir:
        known = [d for d in os.environ.get(MODEL_DIRS_ENV, "").split(",") if d]
        os.environ[MODEL_DIRS_ENV] = ",".join(known + args.model_dir)
    logging.basicConfig(level=logging.INFO)
    import uvicorn

    print(f"ChatVLMLLM on http://{args.host}:{args.port}  "
          "(REST: /analyze_layout, /chat, /compare, /region_text, /models, /health)")
    # A client that opens connections and goes quiet must not hold them: idle keep-alive ends
    # after 5 s, a request's headers must arrive within CHATVLMLLM_HEADER_TIMEOUT_S (10) and its
    # body keep arriving (pipelines/http_guards.py).
    http = header_timeout_protocol(float(os.environ.get("CHATVLMLLM_HEADER_TIMEOUT_S", "10")))
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning", timeout_keep_alive=5,
                timeout_graceful_shutdown=10, http=http)


if __name__ == "__main__":
    main()
