"""The app with a tiny twin selected: parsing streams text and ends with valid views; absent
weights give the actionable error, and the app keeps serving."""
from __future__ import annotations

import pytest

from pipelines import CATEGORIES
from tests.app_server import running_app
from tests.pages import PAGE_ONE, write_png
from tests.twins import build_twin

TWIN = "qwen2_5_vl_3b"
MAX_NEW_TOKENS = 24


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    twin = build_twin(TWIN, tmp_path_factory.mktemp("ui_twins"))
    env = {"CHATVLMLLM_MODEL_DIRS": f"{TWIN}={twin}", "HF_HUB_OFFLINE": "1", "CHATVLMLLM_STREAM_INTERVAL_S": "0"}
    with running_app(env=env) as url:
        yield url


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    yield client
    client.close()


@pytest.fixture(scope="module")
def page_png(tmp_path_factory):
    return write_png(tmp_path_factory.mktemp("ui_pages") / "page.png", PAGE_ONE)


def parse_args(path, model: str, mode: str):
    from gradio_client import handle_file

    return (handle_file(str(path)), model, mode, 200, "", None, None, MAX_NEW_TOKENS, False, "", "", "", "")


def test_twin_parse_streams_then_renders(client, page_png):
    job = client.submit(*parse_args(page_png, TWIN, "layout_all"), api_name="/parse")
    final = job.result(timeout=300)
    updates = job.outputs()
    # Streaming: raw text arrived in updates before the final views.
    streamed = [u[2] for u in updates[:-1] if isinstance(u[2], str) and u[2]]
    assert streamed, f"no streamed text among {len(updates)} updates"
    annotated, rendered, raw, page_json, _, timings, zip_path, *_ = final
    assert page_json["width"] == 1240 and page_json["height"] == 1754 and page_json["model"] == TWIN
    assert 0 < page_json["tokens"]["generated"] <= MAX_NEW_TOKENS
    assert page_json["raw_output"].startswith(streamed[-1])
    for element in page_json["elements"]:
        x1, y1, x2, y2 = element["bbox"]
        assert 0 <= x1 < x2 <= 1240 and 0 <= y1 < y2 <= 1754 and element["category"] in CATEGORIES
    assert {"first_token_s", "generate_s", "load_s", "total_s"} <= set(page_json["timings"])
    assert TWIN in timings and annotated and zip_path


def test_absent_weights_give_the_actionable_error_and_the_app_keeps_serving(client, page_png):
    with pytest.raises(Exception) as caught:
        client.predict(*parse_args(page_png, "lighton_ocr", "text_only"), api_name="/parse")
    message = str(caught.value)
    assert "lightonai/LightOnOCR-2-1B" in message and "download" in message and "--model-dir" in message
    result = client.predict(*parse_args(page_png, "classic", "text_only"), api_name="/parse")
    assert result[3]["model"] == "classic" and result[3]["elements"]
