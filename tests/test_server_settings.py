"""A UI session may point a model only at servers the operator allowed (no request forgery)."""
from __future__ import annotations

import pytest

from pipelines import PipelineError
from pipelines.engines.openai_engine import allowed_session_urls, session_base_urls


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("CHATVLMLLM_OPENAI_") or name == "CHATVLMLLM_ALLOWED_SERVER_URLS":
            monkeypatch.delenv(name)


def test_nothing_is_allowed_by_default():
    assert allowed_session_urls() == set()
    with pytest.raises(PipelineError, match=r"Server http://169.254.169.254/v1 is not one the operator allows") as caught:
        session_base_urls("http://169.254.169.254")
    assert caught.value.code == "server_not_allowed" and "allowed: none" in caught.value.message


def test_operator_list_and_configured_servers_are_allowed(monkeypatch):
    monkeypatch.setenv("CHATVLMLLM_ALLOWED_SERVER_URLS", "http://gpu1:8000/v1, http://gpu2:8000")
    monkeypatch.setenv("CHATVLMLLM_OPENAI_DOTS_OCR_BASE_URLS", "http://gpu3:8000/v1")
    assert allowed_session_urls() == {"http://gpu1:8000/v1", "http://gpu2:8000/v1", "http://gpu3:8000/v1"}
    assert session_base_urls("http://gpu2:8000/v1,http://gpu3:8000/") == ["http://gpu2:8000/v1", "http://gpu3:8000/v1"]
    assert session_base_urls("") == []
    with pytest.raises(PipelineError, match="http://gpu1:9999/v1 is not one the operator allows"):
        session_base_urls("http://gpu1:8000/v1 http://gpu1:9999/v1")


def test_non_http_urls_are_refused(monkeypatch):
    monkeypatch.setenv("CHATVLMLLM_ALLOWED_SERVER_URLS", "http://gpu1:8000/v1")
    with pytest.raises(PipelineError, match="is not an http"):
        session_base_urls("file:///etc/passwd")


def test_a_session_server_choice_reaches_every_tab(monkeypatch, tmp_path):
    """The Parse tab's Server fields hold for the whole session: Parse, Chat, Compare and Region
    build their pipelines through ui.common.session_pipeline, which refuses URLs the operator did
    not allow and otherwise points the model at the chosen servers."""
    import gradio as gr

    from tests.pages import write_png
    from ui.chat_tab import chat_respond
    from ui.common import session_pipeline
    from ui.compare_tab import compare_ui
    from ui.region_tab import region_read

    monkeypatch.setenv("CHATVLMLLM_ALLOWED_SERVER_URLS", "http://gpu1:8000/v1")
    chosen = session_pipeline("qwen2_vl_2b", "http://gpu1:8000", " Qwen/Qwen2-VL-2B-Instruct ")
    assert chosen.engine.name == "openai"
    assert chosen.engine.config.base_urls == ("http://gpu1:8000/v1",)
    assert chosen.engine.config.served_model == "Qwen/Qwen2-VL-2B-Instruct"
    assert session_pipeline("qwen2_vl_2b", "", "").engine.name == "transformers"  # no choice: the operator's

    forged = "http://169.254.169.254"
    page = str(write_png(tmp_path / "page.png"))
    turns = [{"user": "What is the title?", "assistant": None}]
    *_, last = chat_respond(turns, page, "qwen2_vl_2b", 1, False, None, 8, forged, "")
    display, stored, _, notes = last
    assert "Server http://169.254.169.254/v1 is not one the operator allows" in display[-1]["content"]
    assert "is not one the operator allows" in stored[-1]["error"]
    assert notes == ""  # shown once, in the conversation, not again under the buttons
    with pytest.raises(gr.Error, match="is not one the operator allows"):
        next(compare_ui(page, 1, ["classic:layout_all", "qwen2_vl_2b:text_only"], 8, forged, ""))
    with pytest.raises(gr.Error, match="is not one the operator allows"):
        region_read({"original": page, "size": [1240, 1754]}, "qwen2_vl_2b", "10, 10, 200, 100", 8, forged, "")
