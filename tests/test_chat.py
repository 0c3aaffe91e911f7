"""Chat about a page: the history fitted into the context, multi-turn prompts as the model receives
them, streaming, boxes in answers, and REST /chat giving what Pipeline.chat gives."""
from __future__ import annotations

import json

import pytest

from pipelines import PipelineError
from pipelines.chat import answer_elements, answer_markdown, fit_history
from pipelines.conversation import ContextWindow, character_window
from pipelines.schema import Element

CONVERSATION = [
    {"role": "system", "content": "Be brief."},  # 9 characters
    {"role": "user", "content": "First question?"},  # 15
    {"role": "assistant", "content": "First answer."},  # 13
    {"role": "user", "content": "Second question?"},  # 16
    {"role": "assistant", "content": "Second answer."},  # 14
    {"role": "user", "content": "Third?"},  # 6
]
# Two characters of template per message: costs 11, 17, 15, 18, 16, 8 = 85 in all.
WINDOW = ContextWindow(limit=85, unit="characters", count=len, per_message=2)


def texts(fitted) -> list[str]:
    return [m["content"] for m in fitted.messages]


def test_everything_fits_at_exactly_the_limit():
    fitted = fit_history(CONVERSATION, WINDOW)
    assert texts(fitted) == [m["content"] for m in CONVERSATION]
    assert (fitted.used, fitted.dropped_turns, fitted.dropped_messages, fitted.note) == (85, 0, 0, None)


def test_one_unit_over_the_limit_drops_the_oldest_turn_and_says_so():
    fitted = fit_history(CONVERSATION, ContextWindow(84, "characters", len, per_message=2))
    assert texts(fitted) == ["Be brief.", "Second question?", "Second answer.", "Third?"]
    assert (fitted.used, fitted.dropped_turns, fitted.dropped_messages) == (53, 1, 2)
    assert fitted.note == ("The conversation was too long for the model's context: the 1 oldest turn(s) "
                           "(2 messages) were left out. What was sent uses 53 of the 84 characters available.")
    # 53 still fits both remaining turns; 52 leaves the system message and the question.
    assert texts(fit_history(CONVERSATION, ContextWindow(53, "characters", len, per_message=2)))[1] == "Second question?"
    tight = fit_history(CONVERSATION, ContextWindow(52, "characters", len, per_message=2))
    assert texts(tight) == ["Be brief.", "Third?"] and (tight.used, tight.dropped_turns) == (19, 2)


def test_the_question_is_never_dropped_and_an_oversized_one_is_refused():
    assert texts(fit_history(CONVERSATION, ContextWindow(19, "characters", len, per_message=2))) == [
        "Be brief.", "Third?"]
    with pytest.raises(PipelineError) as error:
        fit_history(CONVERSATION, ContextWindow(18, "characters", len, per_message=2))
    assert error.value.code == "context_exceeded"
    assert error.value.message.startswith("The question and the page text need 19 characters, more than the 18")
    with pytest.raises(PipelineError) as error:
        fit_history(CONVERSATION, ContextWindow(0, "tokens", len, context=4096))
    assert "take all of the model's 4096-token context" in error.value.message


def test_tokens_are_counted_with_the_given_tokenizer():
    words = ContextWindow(limit=10, unit="tokens", count=lambda text: len(text.split()), per_message=3)
    messages = [{"role": "user", "content": "one two three"}, {"role": "assistant", "content": "four"},
                {"role": "user", "content": "five six"}]
    # Costs 6, 4, 5: 15 > 10, so the first turn (10) goes and 5 tokens remain.
    fitted = fit_history(messages, words)
    assert texts(fitted) == ["five six"] and fitted.used == 5 and "5 of the 10 tokens" in fitted.note


def test_messages_in_gradio_and_openai_shapes_are_read_as_text():
    messages = [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:..."}},
                                     {"type": "text", "text": "What is this?"}]},
        {"role": "assistant", "content": {"type": "text", "text": "A report."}},
        {"role": "user", "content": ""},  # empty: dropped
        {"role": "user", "content": "Who wrote it?"},
    ]
    fitted = fit_history(messages, character_window())
    assert fitted.messages == [{"role": "user", "content": "What is this?"},
                               {"role": "assistant", "content": "A report."},
                               {"role": "user", "content": "Who wrote it?"}]
    for bad in ([{"role": "assistant", "content": "hi"}], [{"role": "robot", "content": "hi"}], []):
        with pytest.raises(PipelineError) as error:
            fit_history(bad, character_window())
        assert error.value.code == "bad_messages"


PAGE = (1240, 1754)


def test_boxes_in_answers_are_read_in_each_familys_space():
    # Qwen2-VL: box tokens on 0-1000. 200 / 1000 * 1754 = 350.8 -> 351.
    qwen2 = "It is <|object_ref_start|>the total<|object_ref_end|><|box_start|>(100,200),(300,400)<|box_end|>."
    assert answer_elements("qwen2_vl", qwen2, PAGE) == [Element((124, 351, 372, 702), "Text", "the total")]
    # Qwen2.5-VL: bbox_2d in pixels of the resized input, 1232 x 1764 for this page.
    qwen25 = '```json\n[{"bbox_2d": [616, 882, 1232, 1764], "label": "total"}]\n```'
    assert answer_elements("qwen2_5_vl", qwen25, PAGE, (1232, 1764)) == [Element((620, 877, 1240, 1754), "Text", "total")]
    assert answer_elements("qwen2_5_vl", qwen25, PAGE) == answer_elements("qwen2_5_vl", qwen25, PAGE, (1232, 1764))
    # Qwen3-VL: bbox_2d on 0-1000.
    qwen3 = '[{"bbox_2d": [500, 500, 1000, 1000], "label": "Table"}]'
    assert answer_elements("qwen3_vl", qwen3, PAGE) == [Element((620, 877, 1240, 1754), "Table", "")]
    # No box markers: no elements (the answer is not a page-sized Text element).
    assert answer_elements("qwen2_5_vl", "The total is 12.50 EUR.", PAGE) == []


def test_answers_render_boxes_as_labels_and_html_sanitised():
    assert answer_markdown("It is <|object_ref_start|>the total<|object_ref_end|><|box_start|>(1,2),(3,4)"
                           "<|box_end|> and <|box_start|>(5,6),(7,8)<|box_end|>.") == "It is the total [box 1] and [box 2]."
    assert answer_markdown("<script>alert(1)</script> **ok** <b>bold</b> x < y") == (
        "&lt;script&gt;alert(1)&lt;/script&gt; **ok** <b>bold</b> x &lt; y")
    assert answer_markdown("$$x^2$$ and 5 > 3") == "$$x^2$$ and 5 > 3"


def test_the_chat_tab_sends_every_answered_turn():
    from ui import chat_tab

    message = {"text": "Which river?", "files": ["/tmp/report.pdf"]}
    _, turns, shown, attached = chat_tab.chat_add(message, [], None)
    assert attached == "/tmp/report.pdf" and turns == [{"user": "Which river?", "assistant": None, "file": "report.pdf"}]
    assert shown == [{"role": "user", "content": "📎 report.pdf"}, {"role": "user", "content": "Which river?"}]
    turns[-1]["assistant"] = "The <|box_start|>(1,2),(3,4)<|box_end|> one."
    _, turns, shown, _ = chat_tab.chat_add({"text": "How many sites?", "files": []}, turns, attached)
    assert shown[-2] == {"role": "assistant", "content": "The [box 1] one."}
    assert chat_tab.chat_messages(turns) == [
        {"role": "user", "content": "Which river?"},
        {"role": "assistant", "content": "The <|box_start|>(1,2),(3,4)<|box_end|> one."},  # as the model wrote it
        {"role": "user", "content": "How many sites?"},
    ]
    turns[-1]["error"] = "out of memory"  # a failed turn is shown, not sent
    assert chat_tab.chat_messages(turns)[-1]["content"] == "The <|box_start|>(1,2),(3,4)<|box_end|> one."
    reopened, _ = chat_tab.chat_regenerate(turns)
    assert reopened[-1]["assistant"] is None and not reopened[-1]["error"]
    remaining, _, restored = chat_tab.chat_undo(turns)
    assert len(remaining) == 1 and restored == {"text": "How many sites?", "files": []}


# -- with a tiny twin ----------------------------------------------------------------------------

TWIN = "qwen2_vl_2b"


@pytest.fixture(scope="module")
def feature():
    from tests.feature_app import shared_feature_app

    return shared_feature_app()


@pytest.fixture(scope="module")
def pipeline(feature):
    from pipelines import load_pipeline

    return load_pipeline(TWIN, model_path=str(feature.twins[TWIN]), max_new_tokens=8)


@pytest.fixture()
def calls(pipeline, monkeypatch):
    """The input tensors of every generation: what the model really receives."""
    from tests.test_transformers_engine import capture_generate

    return capture_generate(pipeline.engine, monkeypatch)


def received_prompt(pipeline, call) -> str:
    pipeline.load()
    tokenizer = pipeline.engine._model().processor.tokenizer
    return tokenizer.decode(call["input_ids"][0].tolist(), skip_special_tokens=False)


def test_the_second_turn_reaches_the_model_with_the_first(feature, pipeline, calls):
    first = [{"role": "user", "content": "Which river does the report cover?"}]
    pipeline.chat(feature.pdf, first, page=2)
    second = first + [{"role": "assistant", "content": "It covers the river by the old mill."},
                      {"role": "user", "content": "How many sites were sampled?"}]
    stream = pipeline.chat(feature.pdf, second, stream=True, page=2, page_text="Forty members came to the meeting.")
    list(stream)
    prompt = received_prompt(pipeline, calls[-1])
    in_order = ["Forty members came to the meeting.", "<|vision_start|>", "Which river does the report cover?",
                "It covers the river by the old mill.", "How many sites were sampled?"]
    positions = [prompt.index(text) for text in in_order]
    assert positions == sorted(positions), prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    # Page 2 of the PDF (827 x 1170 px at 200 dpi), seen at Qwen2-VL's resize: 840 x 1176 = 60 x 84 patches.
    assert (stream.reply.page, stream.reply.width, stream.reply.height) == (1, 827, 1170)
    assert calls[-1]["image_grid_thw"][0].tolist() == [1, 84, 60]
    with pytest.raises(PipelineError) as error:
        pipeline.chat(feature.pdf, first, page=3)
    assert error.value.code == "bad_pages"


def test_a_history_over_the_context_loses_just_enough_old_turns(feature, pipeline, calls):
    from pipelines import load_document
    from pipelines.engines.hf_inputs import chat_inputs

    engine = pipeline.engine
    page = load_document(feature.png).pages[0]
    window = engine.context_window(page, 8)
    assert window.unit == "tokens" and window.context == 4096 and 0 < window.limit < 4096
    filler = " ".join(f"{n * 7919 % 10007:05d}" for n in range(150))  # digits: many tokens each
    history = []
    for turn in range(12):
        history += [{"role": "user", "content": f"Question {turn}: {filler}"},
                    {"role": "assistant", "content": f"Answer {turn}: {filler}"}]
    question = {"role": "user", "content": "Which is the last question?"}
    stream = pipeline.chat(feature.png, history + [question], stream=True)
    list(stream)
    prompt = received_prompt(pipeline, calls[-1])
    kept = [turn for turn in range(12) if f"Question {turn}:" in prompt]
    assert kept and kept == list(range(kept[0], 12)), kept  # the newest turns, none skipped
    assert "Which is the last question?" in prompt
    dropped = kept[0]
    assert stream.notes == stream.reply.notes and f"the {dropped} oldest turn(s) ({2 * dropped} messages)" in stream.notes[0]
    # What was sent fits the model's context with the answer's budget; one more turn would not.
    engine.load()
    processor = engine._model().processor
    size = engine._chat_size(page)
    sent = calls[-1]["input_ids"].shape[-1]
    assert sent + 8 <= 4096
    one_more = history[2 * (dropped - 1):] + [question]
    assert chat_inputs(processor, page.image, one_more, size).prompt_tokens + 8 > 4096


def test_page_text_comes_from_the_parse_tab_or_a_fresh_parse(feature, pipeline, calls):
    from pipelines import DocumentResult, PageResult
    from ui.chat_tab import chat_page_text
    from ui.common import file_digest

    parsed = DocumentResult("page.png", "classic", "layout_all", [
        PageResult(0, 620, 877, "classic", "layout_all", markdown="# Parsed before")])
    state = {"result": parsed.to_dict(), "digest": file_digest(str(feature.png))}
    assert chat_page_text(state, str(feature.png), 1) == "# Parsed before"
    assert chat_page_text(state, str(feature.png), 2) is True  # that page was not parsed
    assert chat_page_text(state, str(feature.pdf), 1) is True  # another file
    question = [{"role": "user", "content": "What is the title?"}]
    pipeline.chat(feature.png, question, page_text=True)  # parsed now, with the classic engine
    prompt = received_prompt(pipeline, calls[-1])
    assert prompt.index("Quarterly Report on River Water Quality") < prompt.index("What is the title?")


def test_the_python_stream_yields_before_the_answer_is_complete(feature, pipeline):
    stream = pipeline.chat(feature.png, [{"role": "user", "content": "Summarise the page."}], stream=True,
                           max_new_tokens=24)
    first = next(stream)
    assert stream.reply is None  # generation is still going
    rest = list(stream)
    assert first and rest, "expected more than one chunk"
    assert stream.reply.text == (first + "".join(rest)).strip()
    assert {"load_s", "first_token_s", "total_s"} <= set(stream.reply.timings)


@pytest.fixture(scope="module")
def client(feature):
    from gradio_client import Client

    client = Client(feature.url, verbose=False)
    yield client
    client.close()


def test_gradio_chat_endpoint_streams_then_gives_the_reply(feature, client):
    from gradio_client import handle_file

    messages = [{"role": "user", "content": "What is the title?"}]
    job = client.submit(handle_file(str(feature.png)), messages, "qwen2_5_vl_3b", 1, False, 16, api_name="/chat")
    final = job.result(timeout=120)
    updates = job.outputs()
    partial = [u for u in updates if not u["done"]]
    assert partial, f"no streamed update among {len(updates)}"
    assert final["done"] and final["model"] == "qwen2_5_vl_3b" and (final["width"], final["height"]) == (620, 877)
    for update in partial:
        assert final["answer"].startswith(update["answer"].strip()), (update, final["answer"])


def test_rest_chat_equals_pipeline_chat(feature, pipeline):
    import requests

    messages = [{"role": "user", "content": "Which river does the report cover?"},
                {"role": "assistant", "content": "It covers the river by the old mill."},
                {"role": "user", "content": "How many sites?"}]
    with open(feature.pdf, "rb") as handle:
        response = requests.post(f"{feature.url}/chat", files={"file": ("two_pages.pdf", handle)}, data={
            "messages": json.dumps(messages), "model": TWIN, "page": 2, "max_new_tokens": 12}, timeout=120)
    assert response.status_code == 200, response.text
    body = response.json()
    expected = pipeline.chat(feature.pdf, messages, page=2, max_new_tokens=12)
    assert body["answer"] == expected and body["answer"]
    assert (body["page"], body["width"], body["height"], body["model"]) == (1, 827, 1170, TWIN)
    assert body["notes"] == [] and isinstance(body["elements"], list)

    with open(feature.png, "rb") as handle:
        refused = requests.post(f"{feature.url}/chat", files={"file": handle}, data={
            "messages": json.dumps(messages), "model": "classic"}, timeout=60)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "cannot_chat"
    with open(feature.png, "rb") as handle:
        malformed = requests.post(f"{feature.url}/chat", files={"file": handle}, data={
            "messages": "[{role: user}]", "model": TWIN}, timeout=60)
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "bad_messages"
