"""The REST app's contract for anyone who calls it: every error is {"error": {code, message}}
with the status the OpenAPI schema documents, unexpected failures hide their traceback, model
work is bounded across doors (503 + Retry-After), and answers carry security headers."""
from __future__ import annotations

import io
import threading

import pytest
from fastapi.testclient import TestClient
from PIL import Image

import pipelines.api as api
from pipelines.admission import WorkLimiter, BusyError
from pipelines.api import create_rest_app


def png_bytes(size=(200, 100)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "white").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture()
def client():
    with TestClient(create_rest_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]


def test_an_unexpected_exception_is_a_json_500_without_traceback(client, monkeypatch):
    import cv2

    def broken(*args, **kwargs):
        raise cv2.error("OpenCV(4.9) /src/imgproc/resize.cpp:4152: error: (-215:Assertion failed) !ssize.empty()")

    monkeypatch.setattr(api, "load_pipeline", broken)
    response = client.post("/analyze_layout", files={"file": ("a.png", png_bytes())})
    assert response.status_code == 500
    error = error_of(response)
    assert error == {"code": "internal", "message": "The server failed unexpectedly (error); the error is logged."}
    assert "resize.cpp" not in response.text and "Traceback" not in response.text


def test_a_malformed_multipart_body_gets_the_documented_error(client):
    response = client.post("/analyze_layout", content=b"garbage",
                           headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "bad_request"


def test_a_page_number_of_5000_digits_is_a_400(client):
    response = client.post("/analyze_layout", files={"file": ("a.png", png_bytes())}, data={"pages": "9" * 5000})
    assert response.status_code == 400 and error_of(response)["code"] == "bad_pages"


def test_a_thin_image_is_a_413_naming_its_limit(client):
    response = client.post("/analyze_layout", files={"file": ("a.png", png_bytes((3000, 1)))})
    assert response.status_code == 413
    assert "max_aspect_ratio" in error_of(response)["message"]


def test_unknown_routes_and_methods_answer_in_the_same_shape(client):
    response = client.get("/analyze_layout")
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"


def test_negative_token_budget_is_refused(client):
    response = client.post("/chat", files={"file": ("a.png", png_bytes())},
                           data={"messages": '[{"role": "user", "content": "hi"}]', "model": "qwen2_vl_2b",
                                 "max_new_tokens": "-1"})
    assert response.status_code == 400
    assert error_of(response) == {"code": "bad_option", "message": "max_new_tokens must be a positive whole number, got -1."}


def test_openapi_documents_the_real_statuses_and_the_error_body(client):
    schema = client.get("/openapi.json").json()
    assert schema["components"]["schemas"]["ErrorBody"]["required"] == ["error"]
    for path in ("/analyze_layout", "/chat", "/compare", "/region_text"):
        responses = schema["paths"][path]["post"]["responses"]
        for status in ("400", "413", "422", "500", "503"):
            assert responses[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)


def test_security_headers_on_every_answer(client):
    for response in (client.get("/health"), client.get("/nowhere")):
        policy = response.headers["content-security-policy"]
        assert "img-src 'self' data: blob:" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_in_a_space_the_page_may_be_framed_by_the_hub(monkeypatch):
    monkeypatch.setenv("SPACE_ID", "someone/chatvlmllm")
    with TestClient(create_rest_app()) as space_client:
        response = space_client.get("/health")
    assert response.headers["content-security-policy"].endswith("frame-ancestors https://huggingface.co https://*.hf.space")
    assert "x-frame-options" not in response.headers


# -------------------------------------------------------------------------------- backpressure


def test_work_limiter_runs_slots_queues_waiters_and_refuses_the_rest():
    limiter = WorkLimiter(slots=1, max_waiting=1, wait_s=30)
    release = threading.Event()
    entered = threading.Event()
    order = []

    def holder():
        with limiter.slot():
            entered.set()
            order.append("first in")
            release.wait(10)

    def waiter():
        with limiter.slot():
            order.append("waiter in")

    first = threading.Thread(target=holder)
    first.start()
    assert entered.wait(10)
    second = threading.Thread(target=waiter)
    second.start()
    while limiter._waiting != 1:  # the waiter is in line
        threading.Event().wait(0.01)
    with pytest.raises(BusyError) as caught:
        with limiter.slot():
            pass
    assert caught.value.status == 503 and caught.value.code == "busy"
    release.set()
    first.join(10)
    second.join(10)
    assert order == ["first in", "waiter in"]
    assert limiter.running == 0


def test_rest_is_refused_with_retry_after_when_every_slot_is_busy(client, monkeypatch):
    limiter = WorkLimiter(slots=1, max_waiting=0)
    monkeypatch.setattr(api, "WORK", limiter)
    with limiter.slot():  # another request (REST or a Gradio event) holds the only slot
        response = client.post("/analyze_layout", files={"file": ("a.png", png_bytes())})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert error_of(response)["code"] == "busy"


@pytest.mark.parametrize("route, form", [
    ("/region_text", {"box": "0,0,10,10", "model": "classic"}),
    ("/compare", {"runs": "classic:layout_all,classic:text_only"}),
    ("/analyze_layout", {}),
])
def test_refused_requests_never_decode_their_upload(client, monkeypatch, route, form):
    """Reading and decoding the upload happen inside the work slot: a busy server refuses before
    spending memory on it (12 refused 40 MP pages took 7 GiB when decoding came first)."""
    limiter = WorkLimiter(slots=1, max_waiting=0)
    monkeypatch.setattr(api, "WORK", limiter)
    decoded = []
    monkeypatch.setattr(api, "load_document", lambda *a, **k: decoded.append(1))
    monkeypatch.setattr(api, "_read_upload", lambda *a, **k: decoded.append(1) or b"")
    with limiter.slot():
        response = client.post(route, files={"file": ("a.png", png_bytes())}, data=form)
    assert response.status_code == 503 and decoded == []


def test_models_say_whether_their_weights_are_bundled_on_disk_or_a_download(client, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub is not asked: sizes unknown
    monkeypatch.setenv("CHATVLMLLM_MODEL_DIRS", f"qwen2_vl_2b={tmp_path}")
    models = {m["key"]: m for m in client.get("/models").json()["models"]}
    assert (models["classic"]["weights"], models["classic"]["download_gb"]) == ("bundled", 0.0)
    assert models["qwen2_vl_2b"]["weights"] == "local"  # a configured folder
    assert (models["got_ocr2"]["weights"], models["got_ocr2"]["download_gb"]) == ("download", None)


def test_the_chat_tab_says_plainly_when_no_chat_model_can_run_yet(monkeypatch):
    monkeypatch.delenv("CHATVLMLLM_MODEL_DIRS", raising=False)
    from ui.chat_tab import chat_default

    model, note = chat_default()
    assert model == "qwen2_vl_2b"
    assert "Chatting needs a vision-language model" in note and "hf download Qwen/Qwen2-VL-2B-Instruct" in note
