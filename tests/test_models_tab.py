"""The Models tab's catalogue (where each model's weights are) and its download action, with the
hub pointed at a port where nothing listens (no download can happen here)."""
from __future__ import annotations

import gradio as gr
import pytest

from tests.app_server import free_port
from tests.test_transformers_engine import point_hub_at


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    point_hub_at(monkeypatch, f"http://127.0.0.1:{free_port()}", tmp_path / "hub-cache")


def test_the_catalogue_lists_every_model_with_its_weights(no_hub):
    from pipelines import list_models
    from ui.models_tab import catalogue_rows

    rows = {row[0]: row for row in catalogue_rows()}
    assert set(rows) == {s.key for s in list_models()}
    assert rows["classic"][2:] == ["classic", "bundled", "yes", 0.0, ""]
    dots = rows["dots_ocr"]
    assert dots[3:5] == ["download", "yes"]  # torch and transformers are installed here
    assert dots[5] == ""  # the hub cannot be asked for its size here
    assert dots[6] == "hf download rednote-hilab/dots.ocr"


def test_downloading_is_for_the_operator_and_says_what_to_run_without_a_hub(no_hub, monkeypatch):
    from ui.models_tab import ADMIN_TOKEN_ENV, download_model

    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    with pytest.raises(gr.Error, match="operator action"):
        download_model("dots_ocr", "")
    monkeypatch.setenv(ADMIN_TOKEN_ENV, "s3cret")
    with pytest.raises(gr.Error, match="operator action"):
        download_model("dots_ocr", "wrong")
    with pytest.raises(gr.Error) as raised:
        download_model("dots_ocr", "s3cret")
    assert "cannot be reached" in raised.value.message
    assert "`hf download rednote-hilab/dots.ocr --local-dir DIR`" in raised.value.message
    message, rows = download_model("classic", "s3cret")
    assert message.startswith("**classic** needs no download") and len(rows) > 1
    with pytest.raises(gr.Error, match="Unknown model"):
        download_model("../../etc", "s3cret")


def test_model_lists_name_a_download_size_once_the_hub_told_it_and_refresh_when_a_page_opens(no_hub, monkeypatch,
                                                                                              tmp_path):
    import app
    from pipelines import get_spec
    from pipelines.engines import hf_loading
    from ui.common import learn_download_sizes, model_choice, run_choices_noted

    monkeypatch.setattr(hf_loading, "_download_sizes", {})
    dots = get_spec("dots_ocr")
    learn_download_sizes()  # the hub cannot be reached: nothing is learnt, and the lists say so
    assert hf_loading.known_download_gb(dots) is None
    assert hf_loading._download_sizes == {}  # nor remembered: once the hub is back, it is asked again
    assert model_choice(dots) == (f"{dots.label} · downloads its weights", "dots_ocr")
    demo = app.build_demo()
    [refresh] = [f for f in demo.fns.values() if f.fn is not None and f.fn.__name__ == "refreshed"]
    assert refresh.queue is False and refresh.api_visibility == "private"
    assert [o.elem_id for o in refresh.outputs] == [None, "chat-model", "chat-readiness", "compare-runs",
                                                    "region-model", "eval-runs"]
    # Later the hub answers (the app asks once, in the background): a page opened now shows it.
    hf_loading._download_sizes[dots.hub_id] = 6.08
    hf_loading._download_sizes[get_spec("qwen2_vl_2b").hub_id] = 4.42
    parse, chat, chat_note, compare, region, evaluate = refresh.fn()
    assert (f"{dots.label} · downloads 6.1 GB", "dots_ocr") in parse["choices"]
    assert (f"{get_spec('qwen2_vl_2b').label} · downloads 4.4 GB", "qwen2_vl_2b") in chat["choices"]
    assert ("dots_ocr · Layout + text · downloads 6.1 GB", "dots_ocr:layout_all") in compare["choices"]
    assert ("classic · Text only · runs offline", "classic:text_only") in evaluate["choices"]
    assert chat["value"] == "qwen2_vl_2b" and "The first question downloads **Qwen2-VL 2B" in chat_note
    assert compare["choices"] == run_choices_noted() and "value" not in compare  # what the user picked stays
    assert any(label.startswith("dots.ocr") and label.endswith("· downloads 6.1 GB") for label, _ in region["choices"])
    # Weights arrive (here: a configured folder): the next page opens on that model, with no warning.
    monkeypatch.setenv("CHATVLMLLM_MODEL_DIRS", f"qwen2_5_vl_3b={tmp_path}")
    _, chat, chat_note, *_ = refresh.fn()
    assert (chat["value"], chat_note) == ("qwen2_5_vl_3b", "")
    assert (f"{get_spec('qwen2_5_vl_3b').label} · weights on disk", "qwen2_5_vl_3b") in chat["choices"]
