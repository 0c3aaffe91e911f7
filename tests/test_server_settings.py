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
