"""`python app.py` attacked from outside, over raw HTTP, the way a public demo link is: server
files named as inputs, private events, slow bodies, concurrent PDF requests, the disk budget."""
from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import time
from pathlib import Path

import pytest
import requests

from tests.app_server import running_app
from tests.pages import PAGE_ONE, PAGE_TWO, write_pdf, write_png

TIMEOUT_S = 180
NOT_UPLOADED = "was not uploaded by a user"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    temp = tmp_path_factory.mktemp("public_demo_tmp")
    env = {"TMPDIR": str(temp), "GRADIO_TEMP_DIR": str(temp / "gradio"), "CHATVLMLLM_BODY_TIMEOUT_S": "2", "CHATVLMLLM_HEADER_TIMEOUT_S": "2",
           "CHATVLMLLM_DISK_BUDGET_MB": "40", "CHATVLMLLM_ADMIN_TOKEN": ""}
    with running_app(env=env) as url:
        yield url, temp


@pytest.fixture(scope="module")
def secret(tmp_path_factory) -> Path:
    """A readable page on the server's disk that no client uploaded."""
    return write_png(tmp_path_factory.mktemp("private") / "private_scan.png", PAGE_ONE)


def file_data(path: str) -> dict:
    return {"path": str(path), "meta": {"_type": "gradio.FileData"}}


def call(base: str, endpoint: str, data: list) -> tuple[str, str]:
    """A Gradio API call the raw way: POST the inputs, then read the event stream to its end."""
    started = requests.post(f"{base}/gradio_api/call/{endpoint}", json={"data": data}, timeout=30)
    assert started.status_code == 200, started.text
    event_id = started.json()["event_id"]
    stream = requests.get(f"{base}/gradio_api/call/{endpoint}/{event_id}", timeout=TIMEOUT_S).text
    events = [line.split(": ", 1)[1] for line in stream.splitlines() if line.startswith("event: ")]
    payloads = [line.split(": ", 1)[1] for line in stream.splitlines() if line.startswith("data: ")]
    return events[-1], payloads[-1]


def upload(base: str, path: Path) -> str:
    with open(path, "rb") as handle:
        response = requests.post(f"{base}/gradio_api/upload", files={"files": (path.name, handle)}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()[0]


def fn_index(base: str, name: str) -> int:
    config = requests.get(f"{base}/config", timeout=30).json()
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == name)


def queue_call(base: str, name: str, data: list) -> dict:
    """Call any event, private ones included, as the browser does (queue/join + its SSE stream)."""
    session = f"attacker{time.monotonic_ns()}"
    joined = requests.post(f"{base}/gradio_api/queue/join", timeout=30, json={
        "data": data, "fn_index": fn_index(base, name), "session_hash": session, "event_data": None,
        "trigger_id": None})
    assert joined.status_code == 200, joined.text
    with requests.get(f"{base}/gradio_api/queue/data", params={"session_hash": session}, stream=True,
                      timeout=TIMEOUT_S) as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if line and line.startswith("data: "):
                message = json.loads(line[6:])
                if message.get("msg") == "process_completed":
                    return message
    raise AssertionError("the event never completed")


# ------------------------------------------------------------------- 1. no server-file read


@pytest.mark.parametrize("endpoint, data", [
    ("region_text", lambda f: [f, "classic", [0, 0, 1400, 400], 1, 0]),
    ("parse", lambda f: [f, "classic", "layout_all", 200, "", None, None, None, False, "", "", "", "", ""]),
    ("compare", lambda f: [f, ["classic:layout_all", "classic:text_only"], 1, 0]),
    ("chat", lambda f: [f, [{"role": "user", "content": "hi"}], "classic", 1, False, 0]),
])
def test_a_server_file_named_as_input_is_refused_alike_whether_it_exists_or_not(app, secret, endpoint, data):
    base, _ = app
    event, payload = call(base, endpoint, data(file_data(secret)))
    assert event == "error" and NOT_UPLOADED in payload, payload
    assert "Quarterly" not in payload and PAGE_ONE[0] not in payload
    missing_event, missing_payload = call(base, endpoint, data(file_data(secret.with_name("nothing.png"))))
    assert missing_event == "error" and NOT_UPLOADED in missing_payload  # no oracle for which paths exist


@pytest.mark.parametrize("endpoint, data", [
    ("region_text", lambda f: [f, "classic", [0, 0, 1400, 400], 1, 0]),
    ("compare", lambda f: [f, ["classic:layout_all", "classic:text_only"], 1, 0]),
    ("chat", lambda f: [f, [{"role": "user", "content": "hi"}], "qwen2_vl_2b", 1, False, 0]),
])
@pytest.mark.parametrize("form", ["plain dict", "traversal", "string"])
def test_api_endpoints_refuse_server_files_named_without_gradios_marker(app, secret, endpoint, data, form):
    """gr.api endpoints take a plain dict: Gradio's own check needs the FileData marker, so the
    app checks these paths itself."""
    base, temp = app
    payload = {"plain dict": {"path": str(secret)},
               "traversal": {"path": f"{temp}/gradio/../../{secret.parent.name}/{secret.name}"},
               "string": str(secret)}[form]
    event, message = call(base, endpoint, data(payload))
    assert event == "error", message
    assert PAGE_ONE[0] not in message and "Quarterly" not in message
    assert NOT_UPLOADED in message or "uploaded file" in message, message


def test_private_events_refuse_server_files_too(app, secret):
    base, _ = app
    message = queue_call(base, "share_upload", [file_data(secret)])
    assert message["success"] is False and NOT_UPLOADED in message["output"]["error"], message
    message = queue_call(base, "region_load", [file_data(secret), 1, None])
    assert message["success"] is False and NOT_UPLOADED in message["output"]["error"], message


def test_a_forged_session_state_is_ignored(app, secret):
    """gr.State inputs come from the server's session, never from the payload: a client that
    sends a state naming a server file as the page gets nothing read from it."""
    base, _ = app
    forged = {"original": str(secret), "size": [1240, 1754], "source": [str(secret), 1]}
    message = queue_call(base, "region_read", [forged, "classic", "0, 0, 1240, 600", 0, "", ""])
    assert message["success"] is False and message["output"]["error"].startswith("Upload an image or a PDF first")
    state = {"result": None, "originals": [str(secret)], "annotated": [str(secret)], "digest": ""}
    message = queue_call(base, "show_page", [state, 1, False])
    assert message["success"] is True and message["output"]["data"] == [None, "", "", None]


def test_an_uploaded_file_is_read(app, tmp_path):
    base, _ = app
    page = write_png(tmp_path / "mine.png", PAGE_ONE)
    event, payload = call(base, "region_text", [file_data(upload(base, page)), "classic", [0, 0, 1240, 400], 1, 0])
    assert event == "complete", payload
    assert PAGE_ONE[0] in json.loads(payload)[0]["text"]


def test_server_files_are_not_served(app, secret):
    base, _ = app
    for path in (secret, Path(__file__).resolve(), Path("/etc/passwd")):
        assert requests.get(f"{base}/gradio_api/file={path}", timeout=30).status_code == 403


# --------------------------------------------------------------------- 2. PDFium, concurrently


def test_concurrent_pdf_requests_over_rest_and_gradio_leave_the_server_up(app, tmp_path):
    base, _ = app
    pdf = write_pdf(tmp_path / "two.pdf", (PAGE_ONE, PAGE_TWO))
    uploaded = upload(base, pdf)

    def rest():
        with open(pdf, "rb") as handle:
            return requests.post(f"{base}/analyze_layout", files={"file": ("two.pdf", handle)},
                                 data={"mode": "layout_only", "dpi": "72"}, timeout=TIMEOUT_S).status_code

    def gradio_preview():  # the Region tab renders the page the moment a file arrives
        return queue_call(base, "region_load", [file_data(uploaded), 2, None])["success"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(rest) for _ in range(6)] + [pool.submit(gradio_preview) for _ in range(6)]
        outcomes = [f.result() for f in futures]
    assert set(outcomes[:6]) <= {200, 503}, outcomes  # 503: the bounded queue was full, by design
    assert 200 in outcomes[:6] and all(outcomes[6:]), outcomes
    assert requests.get(f"{base}/health", timeout=10).json() == {"status": "ok"}


# ------------------------------------------------------------------------- 5. admin actions


def test_unload_is_not_an_api_endpoint_and_needs_the_operator_token(app, tmp_path):
    base, _ = app
    info = requests.get(f"{base}/gradio_api/info", timeout=30).json()
    assert "/unload_model" not in info["named_endpoints"]
    config = requests.get(f"{base}/config", timeout=30).json()
    unload = next(d for d in config["dependencies"] if d.get("api_name") == "unload_model")
    assert unload["api_visibility"] == "private"
    call(base, "region_text", [file_data(upload(base, write_png(tmp_path / "p.png", PAGE_ONE))), "classic",
                               [0, 0, 600, 300], 1, 0])  # classic is loaded now
    message = queue_call(base, "unload_model", ["classic", ""])
    assert message["success"] is False and "operator action" in message["output"]["error"], message
    loaded = queue_call(base, "refresh_loaded", [])["output"]["data"][0]["data"]
    assert [row[0] for row in loaded] == ["classic"]


# ----------------------------------------------------------------------- 6. slow bodies


def test_a_body_shorter_than_its_content_length_gets_408_and_the_connection_closes(app):
    base, _ = app
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(b"POST /analyze_layout HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 100000\r\n\r\n--b\r\n")
        started = time.monotonic()
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"body_timeout"' in answer
    assert time.monotonic() - started < 15


def test_headers_that_trickle_in_lose_their_connection(app):
    base, _ = app
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        closed = False
        for _ in range(12):  # a header line a second, never the blank line that ends them
            time.sleep(1)
            try:
                sock.sendall(b"X-Slow: 1\r\n")
                if sock.recv(1, socket.MSG_DONTWAIT) == b"":
                    closed = True
                    break
            except BlockingIOError:
                continue
            except OSError:
                closed = True
                break
    assert closed and time.monotonic() - started < 8
    assert requests.get(f"{base}/health", timeout=10).status_code == 200  # a normal request is unaffected


def test_oversized_bodies_are_refused_before_they_are_stored(app):
    base, temp = app
    host, port = base.removeprefix("http://").split(":")
    for path in (b"/analyze_layout", b"/gradio_api/upload"):
        with socket.create_connection((host, int(port)), timeout=20) as sock:
            sock.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                         b"Content-Length: 2147000000\r\n\r\n--b\r\n")
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:120]
    # Chunked (no Content-Length): cut off at the limit, not spooled to disk whole.
    def chunks():
        block = b"0" * 2**20
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n\r\n"
        for _ in range(80):
            yield block
    response = requests.post(f"{base}/analyze_layout", data=chunks(), timeout=60,
                             headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


def test_a_huge_announced_upload_deletes_nobody_elses_files(app, tmp_path):
    base, temp = app
    mine = upload(base, write_png(tmp_path / "victim.png", PAGE_ONE))
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(b"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=a\r\n"
                     b"Content-Length: 52000000\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.split(b"\r\n")[0] in (b"HTTP/1.1 507 Insufficient Storage", b"HTTP/1.1 408 Request Timeout") or answer == b""
    assert Path(mine).exists()


# --------------------------------------------------------------------------- 7. disk budget


def test_uploads_and_results_stay_within_the_disk_budget(app):
    """5 x 12 MiB through a 40 MiB budget: the uploads that fit are taken, the rest get 507, and
    no fresh upload of another user is deleted to make room."""
    base, temp = app
    statuses = []
    for index in range(5):
        blob = temp / f"blob{index}.png"
        blob.write_bytes(os.urandom(12 * 2**20))
        with open(blob, "rb") as handle:
            response = requests.post(f"{base}/gradio_api/upload", files={"files": (blob.name, handle)}, timeout=60)
        statuses.append(response.status_code)
        if response.status_code == 507:
            assert response.json()["error"]["code"] == "disk_full"
        blob.unlink()
    assert statuses[0] == 200 and statuses[-1] == 507, statuses
    used = sum(f.stat().st_size for folder in (temp / "gradio", temp / "chatvlmllm") if folder.exists()
               for f in folder.rglob("*") if f.is_file())
    assert used <= 40 * 2**20, used


def test_a_wrong_method_on_a_rest_route_answers_in_the_error_contract(app):
    base, _ = app
    response = requests.get(f"{base}/analyze_layout", timeout=10)
    assert response.status_code == 405
    assert response.json() == {"error": {"code": "method_not_allowed", "message": "/analyze_layout takes POST."}}
    docs = requests.get(f"{base}/docs", timeout=10)
    assert docs.status_code == 200 and "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    assert "cdn.jsdelivr.net" not in requests.get(f"{base}/", timeout=10).headers["content-security-policy"]


def test_evaluate_and_download_events_refuse_strangers(app, secret):
    """The Evaluate tab's event takes files too: a server file named as one is refused; the Models
    tab's download is the operator's, whatever a caller sends."""
    base, _ = app
    message = queue_call(base, "run_evaluation", [False, [file_data(secret)], ["classic:layout_all"], ""])
    assert message["success"] is False and NOT_UPLOADED in message["output"]["error"], message
    message = queue_call(base, "run_evaluation", [True, None, ["classic:layout_all"] * 5, ""])
    assert message["success"] is False and "At most 4 runs" in message["output"]["error"], message
    message = queue_call(base, "download_model", ["dots_ocr", ""])
    assert message["success"] is False and "operator action" in message["output"]["error"], message


def test_the_page_open_list_rebuild_takes_nothing_from_the_caller(app, secret):
    """The unqueued load event that rebuilds the model lists is callable by anyone, with any payload:
    it has no inputs, ignores what is sent, and returns only the catalogue's labels."""
    base, _ = app
    config = requests.get(f"{base}/config", timeout=30).json()
    [event] = [d for d in config["dependencies"] if d.get("api_name") == "refreshed"]
    assert event["queue"] is False and event["inputs"] == [] and len(event["outputs"]) == 6
    info = requests.get(f"{base}/gradio_api/info", timeout=30).json()
    assert "/refreshed" not in info["named_endpoints"]  # not offered to API clients
    for data in ([], ["x"] * 50, [file_data(secret)], [{"path": "../../etc/passwd"}]):
        answer = requests.post(f"{base}/gradio_api/run/predict", timeout=30,
                               json={"data": data, "fn_index": event["id"], "session_hash": "stranger"})
        assert answer.status_code == 200, answer.text
        parse, chat, note, compare, region, evaluate = answer.json()["data"]
        assert ["classic (CPU OCR: PP-OCRv6 + CDLA layout) · runs offline", "classic"] in parse["choices"]
        assert ["classic · Layout + text · runs offline", "classic:layout_all"] in compare["choices"]
        assert all(key != "classic" for _, key in chat["choices"])  # classic cannot chat
        assert str(secret) not in answer.text and "passwd" not in answer.text
