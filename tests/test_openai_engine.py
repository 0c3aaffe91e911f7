"""The openai backend against a real OpenAI-compatible server on 127.0.0.1 (`transformers serve`
with a tiny Qwen2.5-VL twin), plus recorded dots.ocr answers for the architecture that server
cannot load. Proxies in front of the server record what it was sent and when."""
from __future__ import annotations

import base64
import io
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from pipelines import CATEGORIES, ParseOptions, load_document, load_pipeline
from pipelines.engines.openai_client import Completion
from pipelines.errors import (
    EngineCapabilityError, PipelineError, ServerRequestError, ServerResponseError, ServerUnavailableError,
)
from pipelines.families import ImageLimits, get_family
from pipelines.families.common import half_up
from pipelines.families.dots import PROMPT_LAYOUT_ALL
from pipelines.pipeline import FAILED_PAGE, failed_pages
from tests.app_server import free_port
from tests.pages import PAGE_ONE, PAGE_TWO, render_page
from tests.server_fixture import HangingServer, Record, RecordingProxy, max_overlap, shared_twin_server

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

KEY = "qwen2_5_vl_3b"
RECORDED = Path(__file__).parent / "recorded"
# The twin's processor budget (tests/twins.py QWEN_PIXELS): the engine must send pages inside it.
MIN_PIXELS, MAX_PIXELS = 28 * 28 * 4, 28 * 28 * 48
LIMITS = {"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS}
SHORT = ParseOptions(max_new_tokens=24)
DOTS_PREFIX = "<|img|><|imgpad|><|endofimg|>"
PDF_PAGE = (1654, 2339)  # tests.pages' A4 pages rendered at the default 200 dpi


@pytest.fixture(scope="module")
def server():
    return shared_twin_server(KEY)


@pytest.fixture
def proxy(server):
    proxy = RecordingProxy(server.base_url)
    yield proxy
    proxy.stop()


def served(server, *base_urls: str, **options):
    """A pipeline on the twin's server (through the given base URLs), fast retries."""
    options = {"served_model": server.model, "backoff_s": 0.02, **LIMITS, **options}
    return load_pipeline(KEY, backend="openai", base_urls=list(base_urls), **options)


def pdf_bytes(count: int) -> bytes:
    pages = [render_page(*(PAGE_ONE if i % 2 == 0 else PAGE_TWO)) for i in range(count)]
    buffer = io.BytesIO()
    pages[0].save(buffer, "PDF", save_all=True, append_images=pages[1:], resolution=150.0)
    return buffer.getvalue()


def sent_image(record) -> Image.Image:
    url = record.json()["messages"][-1]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def sent_text(record) -> str:
    return record.json()["messages"][-1]["content"][1]["text"]


# ------------------------------------------------------------------ parsing through a real server

def test_parse_through_the_server_gives_a_valid_document(server, proxy):
    pipe = served(server, proxy.url)
    result = pipe.parse_document(pdf_bytes(2), "layout_all", options=SHORT)
    assert [p.page for p in result.pages] == [0, 1] and result.model == KEY and result.warnings == []
    family = get_family("qwen2_5_vl")
    for page, record in zip(result.pages, proxy.posts()):
        assert (page.width, page.height) == PDF_PAGE and page.mode == "layout_all"
        assert page.elements and all(e.category in CATEGORIES for e in page.elements)
        assert all(0 <= e.bbox[0] < e.bbox[2] <= page.width and 0 <= e.bbox[1] < e.bbox[3] <= page.height
                   for e in page.elements)
        assert page.tokens["prompt"] > 0 and 0 < page.tokens["generated"] <= 24
        assert {"decode_s", "load_s", "first_token_s", "generate_s", "total_s"} <= set(page.timings)
        # The server got the page at exactly the size the family maps boxes from, and greedy settings.
        body = record.json()
        assert sent_image(record).size == family.model_size(*PDF_PAGE, ImageLimits(**LIMITS))
        assert sent_text(record) == family.request("layout_all", *PDF_PAGE, ImageLimits()).prompt
        assert (body["model"], body["temperature"], body["top_p"], body["max_tokens"], body["stream"]) == (
            server.model, 0.0, 1.0, 24, True)


def test_same_answer_and_elements_as_the_local_engine(server, proxy):
    def same_text(text: str) -> str:
        # Cut at max_new_tokens inside a multi-byte character, the local decode ends with U+FFFD and
        # the server's streaming decode leaves the partial character out: nothing else may differ.
        return text.rstrip("\ufffd").strip()

    page = render_page(*PAGE_ONE)
    local = load_pipeline(KEY, model_path=server.model, **LIMITS)
    for mode in ("layout_all", "text_only"):
        remote_page = served(server, proxy.url).parse_document(page, mode, options=SHORT).pages[0]
        local_page = local.parse_document(page, mode, options=SHORT).pages[0]
        assert same_text(remote_page.raw_output) == same_text(local_page.raw_output)  # greedy, same pixels and prompt
        assert [(e.bbox, e.category, same_text(e.text)) for e in remote_page.elements] == [
            (e.bbox, e.category, same_text(e.text)) for e in local_page.elements]
        assert remote_page.tokens == local_page.tokens


def test_streaming_arrives_in_chunks(server, proxy):
    chunks: list[str] = []
    page = served(server, proxy.url).parse_document(
        render_page(*PAGE_ONE), "text_only", options=ParseOptions(max_new_tokens=24, on_text=chunks.append)).pages[0]
    assert len(chunks) > 3
    assert "".join(chunks).strip() == page.raw_output


def test_pages_go_in_flight_together_and_come_back_in_page_order(server, proxy):
    done, results, streamed = [], [], []
    # The proxy holds the first three requests until all three have arrived: a client that sends
    # pages one after another would leave it waiting 60 s and show an overlap of 1.
    proxy.gather_next(3)
    result = served(server, proxy.url, concurrency=3).parse_document(
        pdf_bytes(6), "text_only", options=ParseOptions(max_new_tokens=96, on_text=streamed.append),
        on_page=lambda n, total: done.append((n, total)), on_result=results.append)
    # The server saw three requests open at once, never more.
    assert max_overlap(proxy.posts()) == 3, proxy.gather_timeout_stacks[-6000:]
    assert [p.page for p in result.pages] == list(range(6))
    assert done == [(n, 6) for n in range(1, 7)] and sorted(p.page for p in results) == list(range(6))
    # Streamed text comes page by page, in page order, never interleaved.
    assert "".join("".join(streamed).split()) == "".join("".join(p.raw_output for p in result.pages).split())


def test_overlap_counts_a_request_the_proxy_has_not_closed_yet():
    # The client can read a page's last byte before the proxy's thread records the end.
    closed = [Record("/v1/chat/completions", started=1.0, ended=5.0), Record("/v1/chat/completions", started=2.0, ended=6.0)]
    still_open = Record("/v1/chat/completions", started=3.0)
    assert max_overlap(closed + [still_open]) == 3
    assert max_overlap(closed) == 2


def test_several_base_urls_share_the_load(server):
    first, second = RecordingProxy(server.base_url), RecordingProxy(server.base_url)
    try:
        result = served(server, first.url, second.url, concurrency=4).parse_document(
            pdf_bytes(6), "text_only", options=SHORT)
        assert len(result.pages) == 6 and not failed_pages(result)
        assert len(first.posts()) >= 2 and len(second.posts()) >= 2
        assert len(first.posts()) + len(second.posts()) == 6
    finally:
        first.stop()
        second.stop()


def test_chat_and_inference_through_the_server(server, proxy):
    pipe = served(server, proxy.url, max_new_tokens=16)  # the engine's answer budget for chat
    messages = [{"role": "user", "content": "What is the title?"}]
    chunks = list(pipe.chat(render_page(*PAGE_ONE), messages, stream=True))
    assert len(chunks) > 1
    whole = pipe.chat(render_page(*PAGE_ONE), messages)
    assert "".join(chunks).strip() == whole.strip()
    assert isinstance(pipe.inference(render_page(*PAGE_ONE), "What is the title?"), str)
    assert sent_text(proxy.posts()[0]) == "What is the title?"


def test_stop_and_time_limit_end_the_page_early(server, proxy):
    stop = threading.Event()
    page = served(server, proxy.url).parse_document(
        render_page(*PAGE_ONE), "text_only",
        options=ParseOptions(max_new_tokens=3000, stop=stop, on_text=lambda _: stop.set())).pages[0]
    assert any("stopped on request" in w for w in page.warnings)
    started = time.perf_counter()
    page = served(server, proxy.url).parse_document(
        render_page(*PAGE_ONE), "text_only", options=ParseOptions(max_new_tokens=3000, time_limit_s=0.5)).pages[0]
    assert time.perf_counter() - started < 4
    assert any("0.5 s time limit" in w for w in page.warnings) and page.raw_output


# ------------------------------------------------------------------ faults

def test_a_server_that_goes_away_fails_the_remaining_pages_and_keeps_the_rest(server, proxy):
    def on_page(done, total):
        if done == 2:
            proxy.stop()

    result = served(server, proxy.url, concurrency=1, max_retries=1).parse_document(
        pdf_bytes(4), "text_only", options=SHORT, on_page=on_page)
    assert failed_pages(result) == [2, 3]
    assert all(p.raw_output for p in result.pages[:2]) and all(not p.elements for p in result.pages[2:])
    failure = result.pages[2].warnings[0]
    assert failure.startswith(FAILED_PAGE + f"Cannot reach the model server at {proxy.url}")
    assert "gave up after 2 attempts" in failure and failure.endswith("[server_unreachable]")
    assert result.warnings[0].startswith("2 of 4 page(s) failed and hold no elements (page 3, 4)")


def test_a_server_that_dies_mid_answer_is_a_clear_error(server, proxy):
    streamed: list[str] = []

    def on_text(text: str) -> None:
        if not streamed:
            proxy.stop()  # the connection is cut while the answer streams
        streamed.append(text)

    with pytest.raises(ServerUnavailableError) as caught:
        served(server, proxy.url, max_retries=1).parse_document(
            render_page(*PAGE_ONE), "text_only", options=ParseOptions(max_new_tokens=2000, on_text=on_text))
    assert streamed and caught.value.code == "server_unreachable"
    assert "gave up after 2 attempts; first: The model server at" in caught.value.message
    assert "dropped the connection in the middle of an answer" in caught.value.message


def test_no_server_at_all_raises_a_clear_error(server):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ServerUnavailableError) as caught:
        served(server, url, max_retries=2).parse_document(render_page(*PAGE_ONE), "text_only", options=SHORT)
    assert caught.value.code == "server_unreachable" and caught.value.status == 503
    assert f"Cannot reach the model server at {url}" in caught.value.message
    assert "gave up after 3 attempts" in caught.value.message


def test_5xx_answers_are_retried_then_the_page_succeeds(server, proxy):
    proxy.answer_next(503, '{"error": {"message": "server overloaded"}}', times=2)
    page = served(server, proxy.url, max_retries=3).parse_document(
        render_page(*PAGE_ONE), "text_only", options=SHORT).pages[0]
    assert len(proxy.posts()) == 3 and page.raw_output
    assert any("failed 2 time(s)" in w and "HTTP 503: server overloaded" in w for w in page.warnings)


def test_a_hanging_server_hits_the_timeout(server):
    hanging = HangingServer()
    try:
        started = time.perf_counter()
        with pytest.raises(ServerUnavailableError) as caught:
            served(server, hanging.url, timeout_s=1).parse_document(render_page(*PAGE_ONE), "text_only", options=SHORT)
        assert time.perf_counter() - started < 5  # one attempt: a timeout is not retried
        assert caught.value.code == "server_timeout" and caught.value.status == 504
        assert f"{hanging.url} did not answer within 1 s" in caught.value.message
    finally:
        hanging.close()


def test_a_wrong_model_name_is_a_clear_error_naming_what_the_server_serves(server, proxy):
    with pytest.raises(ServerRequestError) as caught:
        served(server, proxy.url, served_model="dots_ocr").parse_document(
            render_page(*PAGE_ONE), "text_only", options=SHORT)
    assert caught.value.code == "model_not_found"
    assert "does not serve the model 'dots_ocr'" in caught.value.message
    assert f"It serves: {server.model}." in caught.value.message


@pytest.mark.parametrize("case, code, fragment", [
    ("context_length_exceeded", "context_length_exceeded", "vLLM --max-model-len"),
    ("model_not_found", "model_not_found", "The model `dots_ocr` does not exist."),
])
def test_recorded_vllm_refusals_become_clear_errors(server, proxy, case, code, fragment):
    recorded = json.loads((RECORDED / "vllm_errors.json").read_text())[case]
    proxy.answer_next(recorded["status"], json.dumps(recorded["body"]))
    with pytest.raises(ServerRequestError) as caught:
        served(server, proxy.url).parse_document(render_page(*PAGE_ONE), "text_only", options=SHORT)
    assert caught.value.code == code and fragment in caught.value.message
    assert len(proxy.posts()) == 1  # a refusal is not retried


def test_a_refused_api_key_says_which_setting_to_change(server, proxy):
    proxy.answer_next(401, '{"error": "Unauthorized"}')
    with pytest.raises(ServerRequestError) as caught:
        served(server, proxy.url, api_key="wrong").parse_document(render_page(*PAGE_ONE), "text_only", options=SHORT)
    assert caught.value.code == "server_auth" and "API_KEY" in caught.value.message
    assert proxy.posts()[0].headers["authorization"] == "Bearer wrong"


@pytest.mark.parametrize("content_type, body, fragment", [
    ("text/event-stream", "data: {not json\n\n", "not a chat completion stream"),
    ("text/event-stream", 'data: {"unexpected": true}\n\ndata: [DONE]\n\n', "not a chat completion chunk"),
    ("text/html", "<html><body>Welcome to nginx!</body></html>", "no chat completion chunk"),
])
def test_malformed_answers_are_errors_not_crashes(server, proxy, content_type, body, fragment):
    proxy.answer_next(200, body, content_type)
    with pytest.raises(ServerResponseError) as caught:
        served(server, proxy.url).parse_document(render_page(*PAGE_ONE), "text_only", options=SHORT)
    assert caught.value.code == "bad_server_response" and fragment in caught.value.message


class RedirectingServer:
    """Answers every request with a 307 to `location` (an allowed server pointing elsewhere)."""

    def __init__(self, location: str):
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                self._redirect()

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._redirect()

            def _redirect(self):
                outer.requests.append(f"{self.command} {self.path}")
                self.send_response(307)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_redirect_is_not_followed_and_the_page_goes_nowhere_else():
    elsewhere = RecordingProxy()  # another host's server: it would answer if the page reached it
    chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "stolen"}, "finish_reason": "stop"}]}
    elsewhere.answer_next(200, f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n", "text/event-stream", times=5)
    location = elsewhere.url + "/chat/completions"
    redirecting = RedirectingServer(location)
    try:
        pipe = load_pipeline(KEY, backend="openai", base_url=redirecting.url, served_model="m",
                             backoff_s=0.02, **LIMITS)
        with pytest.raises(ServerResponseError) as caught:
            pipe.parse_document(render_page(*PAGE_ONE), "text_only", options=SHORT)
        assert elsewhere.records == []
        assert redirecting.requests == ["POST /v1/chat/completions"]  # one attempt: not retried
        assert caught.value.code == "server_redirect" and caught.value.status == 502
        assert f"The model server at {redirecting.url} redirected the request (HTTP 307) to {location}" in (
            caught.value.message)
    finally:
        redirecting.stop()
        elsewhere.stop()


# ------------------------------------------------------------------ configuration

def test_environment_variables_select_and_configure_the_server(server, proxy, monkeypatch):
    prefix = "CHATVLMLLM_OPENAI_QWEN2_5_VL_3B_"
    monkeypatch.setenv(prefix + "BASE_URLS", proxy.url.removesuffix("/v1") + ", " + proxy.url)
    monkeypatch.setenv(prefix + "CONCURRENCY", "3")
    monkeypatch.setenv("CHATVLMLLM_OPENAI_API_KEY", "secret-token")
    pipe = load_pipeline(KEY)
    assert pipe.engine.name == "openai" and pipe.engine.max_in_flight == 3
    assert pipe.engine.config.base_urls == (proxy.url, proxy.url)
    assert "secret-token" not in pipe.name  # the model manager's name is shown in the UI
    page = pipe.parse_document(render_page(*PAGE_ONE), "text_only",
                               options=ParseOptions(max_new_tokens=8, **LIMITS)).pages[0]
    assert page.raw_output
    # No model name given: the engine asked the server which one it serves.
    assert proxy.records[0].path == "/v1/models" and proxy.posts()[0].json()["model"] == server.model
    assert proxy.posts()[0].headers["authorization"] == "Bearer secret-token"


def test_backend_choices_and_missing_configuration():
    with pytest.raises(EngineCapabilityError, match="no_server|base_url"):
        load_pipeline(KEY, backend="openai")
    with pytest.raises(EngineCapabilityError) as caught:
        load_pipeline("classic", backend="openai", base_url="http://127.0.0.1:9/v1")
    assert caught.value.code == "backend_not_supported"
    with pytest.raises(EngineCapabilityError) as caught:
        load_pipeline(KEY, backend="vllm")
    assert caught.value.code == "unknown_backend"


# ------------------------------------------------------------------ dots.ocr: recorded answers

def recorded_dots() -> dict:
    return json.loads((RECORDED / "dots_ocr_layout_all.json").read_text())


def sse(response: dict, pieces: int = 5) -> str:
    """A recorded chat.completion as the stream vLLM sends for it (with include_usage)."""
    content = response["choices"][0]["message"]["content"]
    size = math.ceil(len(content) / pieces)
    head = {"id": response["id"], "object": "chat.completion.chunk", "created": response["created"],
            "model": response["model"]}
    chunks = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    chunks += [{**head, "choices": [{"index": 0, "delta": {"content": content[i:i + size]}, "finish_reason": None}]}
               for i in range(0, len(content), size)]
    chunks.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": response["choices"][0]["finish_reason"]}]})
    chunks.append({**head, "choices": [], "usage": response["usage"]})
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def test_dots_request_follows_the_official_client_and_the_answer_maps_exactly():
    recorded = recorded_dots()
    answering = RecordingProxy()  # no server behind it: it only answers with the recorded stream
    answering.answer_next(200, sse(recorded["response"]), "text/event-stream")
    try:
        pipe = load_pipeline("dots_ocr", backend="openai", base_url=answering.url,
                             served_model="rednote-hilab/dots.ocr")
        page = pipe.parse_document(render_page(*PAGE_ONE), "layout_all").pages[0]
        request = answering.posts()[0]
    finally:
        answering.stop()
    body = request.json()
    # dots_ocr/model/inference.py: image first as a PNG data URL, then the prompt after the image
    # tokens; our generation settings are the local ones (greedy, the family's 16384 tokens).
    assert sent_text(request) == DOTS_PREFIX + PROMPT_LAYOUT_ALL
    image = sent_image(request)
    assert image.format == "PNG" and list(image.size) == recorded["model_size"] == [1232, 1764]
    assert (body["model"], body["temperature"], body["top_p"], body["max_tokens"]) == (
        "rednote-hilab/dots.ocr", 0.0, 1.0, 16384)
    # Boxes in pixels of the 1232x1764 input, scaled back per axis to the 1240x1754 page.
    sx, sy = 1240 / 1232, 1754 / 1764
    expected = [tuple(half_up(v * s) for v, s in zip(item["bbox"], (sx, sy, sx, sy)))
                for item in json.loads(recorded["response"]["choices"][0]["message"]["content"])]
    assert [e.bbox for e in page.elements] == expected == [(116, 166, 962, 222), (116, 302, 1080, 623)]
    assert [e.category for e in page.elements] == ["Title", "Text"]
    assert page.elements[0].text == PAGE_ONE[0] and page.elements[1].text == " ".join(PAGE_ONE[1])
    assert page.tokens == {"prompt": 2893, "generated": 134} and page.warnings == []
    # The drawn text lies inside the mapped boxes (tests/pages.py draws the title at y 171-217).
    assert expected[0][1] <= 171 and expected[0][3] >= 217


def test_dots_region_prompt_refers_to_the_image_as_sent():
    pipe = load_pipeline("dots_ocr", backend="openai", base_url="http://127.0.0.1:9/v1", served_model="dots")
    page = load_document(render_page(*PAGE_ONE)).pages[0]
    region = (120, 160, 960, 220)
    body, model_size = pipe.engine.page_request(page, "region_text", ParseOptions(region=region))
    sx, sy = model_size[0] / 1240, model_size[1] / 1754
    box = [half_up(region[0] * sx), half_up(region[1] * sy), half_up(region[2] * sx), half_up(region[3] * sy)]
    assert body["messages"][0]["content"][1]["text"].endswith(str(box))
    assert body["messages"][0]["content"][1]["text"].startswith(DOTS_PREFIX + "Extract text from the given bounding box")


def test_dots_truncated_answer_keeps_complete_elements_and_says_so():
    recorded = recorded_dots()
    content = recorded["response"]["choices"][0]["message"]["content"]
    cut = content[:content.index('"category": "Text"')]
    pipe = load_pipeline("dots_ocr", backend="openai", base_url="http://127.0.0.1:9/v1", served_model="dots")
    page = load_document(render_page(*PAGE_ONE)).pages[0]
    completion = Completion(cut, "length", 2893, 16384, 0.5, 60.0, "http://127.0.0.1:9/v1")
    result = pipe.engine.page_result(page, "layout_all", ParseOptions(), completion, (1232, 1764), 16384)
    assert [e.category for e in result.elements] == ["Title"]
    assert "recovered 1 complete elements from truncated output" in result.warnings
    assert "output stopped at the 16384-token limit: the page may be incomplete" in result.warnings


def test_every_failure_is_a_pipeline_error():
    for error in (ServerUnavailableError, ServerRequestError, ServerResponseError):
        assert issubclass(error, PipelineError)


# ------------------------------------------------------------- boxes of pages far above the budget


def test_a_page_far_above_the_pixel_budget_maps_boxes_back_exactly():
    """A 4500x6300 page (28 MP) sent within a 37,632-pixel budget (about 27x smaller per side):
    Qwen2.5-VL's bbox_2d are pixels of the image as sent, scaled back per axis to the page."""
    page_image = Image.new("RGB", (4500, 6300), "white")
    family = get_family("qwen2_5_vl")
    model_size = family.model_size(4500, 6300, ImageLimits(**LIMITS))
    assert model_size == (140, 224)  # multiples of 28, area within MAX_PIXELS
    answer = json.dumps([{"bbox_2d": [14, 28, 126, 56], "label": "title", "text_content": "Title"},
                         {"bbox_2d": [0, 100, 140, 224], "label": "text", "text_content": "Body"}])
    response = {"id": "x", "created": 0, "model": "twin", "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 60, "completion_tokens": 30, "total_tokens": 90}}
    answering = RecordingProxy()
    answering.answer_next(200, sse(response), "text/event-stream")
    try:
        pipe = load_pipeline(KEY, backend="openai", base_url=answering.url, served_model="twin", **LIMITS)
        page = pipe.parse_document(page_image, "layout_all").pages[0]
        sent = sent_image(answering.posts()[0])
    finally:
        answering.stop()
    assert sent.size == model_size
    sx, sy = 4500 / 140, 6300 / 224
    assert [e.bbox for e in page.elements] == [
        (half_up(14 * sx), half_up(28 * sy), half_up(126 * sx), half_up(56 * sy)), (0, half_up(100 * sy), 4500, 6300)]


def test_the_page_as_sent_passes_a_servers_smaller_budget_unchanged(server, proxy):
    """The real server's processor allows MAX_PIXELS (tests/twins.py), far less than the app's
    default. Sent at the family's model_size within that budget, pages of two sizes cost exactly
    their own grids of image tokens on the server: it did not resize them again."""
    pipe = served(server, proxy.url)
    small, large = Image.new("RGB", (300, 400), "white"), Image.new("RGB", (4500, 6300), "white")
    tokens = [pipe.parse_document(image, "text_only", options=ParseOptions(max_new_tokens=2)).pages[0].tokens["prompt"]
              for image in (small, large)]
    sizes = [sent_image(record).size for record in proxy.posts()]
    family = get_family("qwen2_5_vl")
    assert sizes == [family.model_size(*image.size, ImageLimits(**LIMITS)) for image in (small, large)]
    grids = [(w // 28) * (h // 28) for w, h in sizes]  # one token per 28x28 patch group (14 px patches, 2x2 merge)
    assert grids == [48, 40]  # 168x224 and 140x224: different grids, so the difference is telling
    assert tokens[0] - tokens[1] == grids[0] - grids[1]
