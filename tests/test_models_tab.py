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
