"""The Chat tab and the /chat endpoint: a conversation about one page."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import gradio as gr
from gradio.data_classes import FileData

from pipelines import DocumentResult, list_models, load_pipeline
from pipelines.chat import CHAT_PRESETS, answer_markdown, page_text_of
from pipelines.render.draw import draw_elements
from ui.common import (
    model_choice, model_event, ModelLists, run_with_stop, stop_cancels, uploaded_file,
    LATEX, MODEL_EVENTS, STREAM_INTERVAL_S, UPLOAD_TYPES, file_digest, load_page, save_image, session_pipeline,
    user_error,
)


def chat_models() -> list[tuple[str, str]]:
    return [model_choice(spec) for spec in list_models() if spec.can_chat]


def chat_list_and_note() -> tuple[dict, str]:
    default, note = chat_default()
    return gr.update(choices=chat_models(), value=default), note


def chat_default() -> tuple[str | None, str]:
    """The model the tab opens on: the first chat model that can run now (weights on disk), and a
    plain note when none can."""
    from pipelines.engines.hf_loading import VLM_INSTALL, readiness

    chatting = [spec for spec in list_models() if spec.can_chat]
    ready = [spec for spec in chatting if readiness(spec) in ("server", "local")]
    if ready:
        return ready[0].key, ""
    if not chatting:
        return None, "No chat-capable model is in the catalogue."
    first = chatting[0]
    if readiness(first) == "packages":
        return first.key, (
            f"Chatting needs a vision-language model (the OCR engine that runs offline cannot chat), and this "
            f"install has no local VLM support: `{VLM_INSTALL}` adds it (a GPU makes it practical; then "
            f"**{first.label}**, `{first.hub_id}`, is a good start), or name a vLLM/SGLang server in the "
            f"Parse tab's Server fields (see README).")
    return first.key, (
        f"Chatting needs a vision-language model, and none is on this machine yet (the OCR engine that "
        f"runs offline cannot chat). The first question downloads **{first.label}** (`{first.hub_id}`); "
        f"to fetch it ahead: `hf download {first.hub_id}`, or serve it with vLLM (see README).")


def chat_display(turns: list[dict]) -> list[dict]:
    """The Chatbot's messages for the conversation's turns (answers rendered for display)."""
    messages = []
    for turn in turns:
        if turn.get("file"):
            messages.append({"role": "user", "content": f"📎 {turn['file']}"})
        messages.append({"role": "user", "content": turn["user"]})
        if turn.get("error"):
            messages.append({"role": "assistant", "content": f"⚠️ {turn['error']}"})
        elif turn.get("assistant") is not None:
            messages.append({"role": "assistant", "content": answer_markdown(turn["assistant"])})
    return messages


def chat_messages(turns: list[dict]) -> list[dict]:
    """What the model hears: every answered turn, then the open question (failed turns left out)."""
    messages = []
    for turn in turns:
        if turn.get("error"):
            continue
        messages.append({"role": "user", "content": turn["user"]})
        if turn.get("assistant"):
            messages.append({"role": "assistant", "content": turn["assistant"]})
    return messages


def chat_add(message: dict | None, turns: list[dict], file_path: str | None):
    """A submitted message becomes an open turn; an attached file becomes the chat's document."""
    text = ((message or {}).get("text") or "").strip()
    files = (message or {}).get("files") or []
    attached = files[-1] if files else None
    if isinstance(attached, dict):
        attached = attached.get("path")
    if not text and not attached:
        raise gr.Error("Type a question about the page.")
    turns = list(turns or [])
    if text:
        turns.append({"user": text, "assistant": None, "file": Path(attached).name if attached else None})
    return gr.update(value=None), turns, chat_display(turns), attached or gr.skip()


def chat_page_text(state: dict | None, file_path: str, page_number) -> str | bool:
    """The Parse tab's Markdown for this page of this file, or True: parse the page now."""
    if state and state.get("digest") == file_digest(file_path):
        text = page_text_of(DocumentResult.from_dict(state["result"]), int(page_number or 1) - 1)
        if text is not None:
            return text
    return True


def chat_respond(turns: list[dict], file_path, model, page_number, with_page_text, parse_state, max_new_tokens,
                 server_urls="", served_model=""):
    """Stream the answer to the open turn into the Chatbot; at the end, draw its boxes on the page."""
    if not turns or turns[-1].get("assistant") is not None or turns[-1].get("error"):
        yield gr.skip(), gr.skip(), gr.skip(), gr.skip()  # no open question (a file was only attached)
        return
    turns = [dict(t) for t in turns]
    turn = turns[-1]
    if not file_path:
        turn["error"] = "Attach a page (the clip in the message box) or upload one in this tab or the Parse tab."
        yield chat_display(turns), turns, gr.skip(), ""  # the error shows once: in the conversation
        return
    stream = None
    try:
        page_text = chat_page_text(parse_state, file_path, page_number) if with_page_text else None
        stream = session_pipeline(model, server_urls, served_model).chat(
            file_path, chat_messages(turns), stream=True, page=int(page_number or 1), page_text=page_text,
            max_new_tokens=int(max_new_tokens) if max_new_tokens else None)
        notes = "\n\n".join(stream.notes)
        turn["assistant"], last_yield = "", 0.0
        yield chat_display(turns), turns, gr.skip(), notes
        for chunk in stream:
            turn["assistant"] += chunk
            if time.monotonic() - last_yield > STREAM_INTERVAL_S:
                last_yield = time.monotonic()
                yield chat_display(turns), turns, gr.skip(), notes
    except Exception as error:  # noqa: BLE001 - shown in the conversation, the app keeps serving
        message = user_error(error, "Chat").message
        turn.update(assistant=None, error=message)
        yield chat_display(turns), turns, gr.skip(), ""  # the error shows once: in the conversation
        return
    finally:
        if stream is not None:
            stream.close()  # Stop pressed or the user left: end generation
    reply = stream.reply
    turn["assistant"] = reply.text
    page = load_page(file_path, page_number)
    marked = save_image(draw_elements(page.image, reply.elements), "chat_page.png")
    found = f"{len(reply.elements)} box(es) from the answer drawn on the page." if reply.elements else ""
    yield chat_display(turns), turns, marked, "\n\n".join([*reply.notes, found]).strip()


def chat_regenerate(turns: list[dict]):
    """The last question opened again, for a new answer."""
    if not turns:
        raise gr.Error("Nothing to regenerate yet.")
    turns = [dict(t) for t in turns]
    turns[-1].update(assistant=None, error=None)
    return turns, chat_display(turns)


def chat_undo(turns: list[dict]):
    """The last turn removed; its question goes back into the message box."""
    if not turns:
        return [], [], gr.skip()
    turns = list(turns)
    last = turns.pop()
    return turns, chat_display(turns), {"text": last["user"], "files": []}


def chat_preview(file_path, page_number):
    if not file_path:
        return None
    try:
        return save_image(load_page(file_path, page_number).image, "chat_page.png")
    except gr.Error:
        return None


def chat_api(file: FileData, messages: list[dict], model: str, page: int = 1, page_text: bool = False,
             max_new_tokens: int = 0) -> Iterator[dict]:
    """Chat about one page (1-based) of an image or PDF: messages are [{"role", "content"}], the last
    one the user's question. Streams {"answer": text so far, "done": false}; the last update is the
    whole reply (answer, boxes it names in page pixels, notes) with "done": true."""
    stream = None
    try:
        stream = load_pipeline(model).chat(uploaded_file(file), messages, stream=True, page=page,
                                           page_text=page_text or None, max_new_tokens=max_new_tokens or None)
        answer = ""
        for chunk in stream:
            answer += chunk
            yield {"answer": answer, "done": False}
    except Exception as error:  # noqa: BLE001
        raise user_error(error, "Chat") from None
    finally:
        if stream is not None:
            stream.close()
    yield {**stream.reply.to_dict(), "done": True}


def build_chat_tab(model_lists: ModelLists, state: gr.State, server: list[gr.Textbox]) -> gr.File:
    turns = gr.State([])
    with gr.Row():
        with gr.Column(scale=1):
            chat_file = gr.File(label="Document (image or PDF)", file_types=UPLOAD_TYPES, type="filepath",
                                elem_id="chat-file")
            default_model, readiness = chat_default()
            model = gr.Dropdown(chat_models(), value=default_model, label="Model (chat-capable)", elem_id="chat-model")
            note = gr.Markdown(readiness, elem_id="chat-readiness")
            # A page opened later opens on what can run then (weights may have arrived since).
            model_lists.add_updates([model, note], chat_list_and_note)
            page_number = gr.Number(1, label="Page", precision=0, minimum=1, elem_id="chat-page-number")
            with_page_text = gr.Checkbox(
                label="Add the page's parsed Markdown as context (the Parse tab's result for this page, "
                      "else a fresh classic OCR parse)", value=False)
            with gr.Accordion("Advanced", open=False):
                max_new_tokens = gr.Number(label="Max new tokens", value=None, precision=0,
                                           elem_id="chat-max-tokens")
            page_view = gr.Image(label="Page (boxes the last answer names)", type="filepath",
                                 elem_id="chat-page", buttons=["download", "fullscreen"])
        with gr.Column(scale=2):
            chatbot = gr.Chatbot(label="Chat", elem_id="chatbot", latex_delimiters=LATEX, sanitize_html=True,
                                 height=520, buttons=["copy"],
                                 placeholder="Ask about the page: attach it with the clip, or use the "
                                             "document on the left.")
            with gr.Row():
                presets = [gr.Button(label, size="sm") for label in CHAT_PRESETS]
            message = gr.MultimodalTextbox(file_types=UPLOAD_TYPES, file_count="single", show_label=False,
                                           placeholder="Ask about the page…", elem_id="chat-input")
            with gr.Row():
                stop_button = gr.Button("Stop", variant="stop", size="sm", elem_id="chat-stop", interactive=False)
                regenerate = gr.Button("Regenerate", size="sm", elem_id="chat-regenerate")
                undo = gr.Button("Undo", size="sm", elem_id="chat-undo")
                clear = gr.Button("Clear", size="sm", elem_id="chat-clear")
            notes = gr.Markdown(elem_id="chat-notes")

    respond_inputs = [turns, chat_file, model, page_number, with_page_text, state, max_new_tokens, *server]
    respond_outputs = [chatbot, turns, page_view, notes]
    private = {"api_visibility": "private"}
    added = message.submit(chat_add, [message, turns, chat_file], [message, turns, chatbot, chat_file], **private)
    answering = run_with_stop(stop_button, added.success, model_event(chat_respond), respond_inputs, respond_outputs,
                              **MODEL_EVENTS, **private)
    asked_again = regenerate.click(chat_regenerate, turns, [turns, chatbot], **private)
    again = run_with_stop(stop_button, asked_again.success, model_event(chat_respond), respond_inputs, respond_outputs,
                          **MODEL_EVENTS, **private)
    stop_cancels(stop_button, [answering, again])
    undo.click(chat_undo, turns, [turns, chatbot, message], **private)
    clear.click(lambda: ([], [], None, ""), None, [turns, chatbot, page_view, notes], **private)
    chatbot.clear(lambda: ([], None, ""), None, [turns, page_view, notes], **private)  # its own bin icon
    for button, text in zip(presets, CHAT_PRESETS.values()):
        button.click(lambda text=text: {"text": text, "files": []}, None, message, **private)
    chat_file.change(chat_preview, [chat_file, page_number], page_view, **private)
    page_number.change(chat_preview, [chat_file, page_number], page_view, **private)
    return chat_file
