"""The stage contracts are explicit and checked: every engine provides its protocol, families
declare what servers need to know, and no layer imports a higher one."""
from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines import get_spec, list_models, load_pipeline
from pipelines.engines import ChatEngine, ParseEngine, contract_members, create_engine
from pipelines.families import get_family
from pipelines.families.template import BaseFamily


@pytest.mark.parametrize("key", [spec.key for spec in list_models()])
def test_every_catalogue_engine_provides_the_contract_its_entry_declares(key):
    spec = get_spec(key)
    engine = load_pipeline(key).engine
    assert isinstance(engine, ParseEngine)
    if spec.can_chat:
        assert isinstance(engine, ChatEngine)
        server = create_engine(spec, "openai", base_url="http://127.0.0.1:9/v1")
        assert isinstance(server, ChatEngine)


def test_an_engine_missing_a_member_is_refused_with_the_names(monkeypatch):
    import pipelines.engines as engines

    class Partial:
        name = "partial"

        def parse_page(self, page, mode, options):
            return None

    monkeypatch.setattr(engines, "_build_engine", lambda spec, backend, options: Partial())
    with pytest.raises(TypeError) as caught:
        create_engine(get_spec("classic"))
    for member in ("load", "unload", "memory_bytes", "expected_bytes", "max_in_flight", "decoding_note"):
        assert member in str(caught.value)
    assert "parse_page" not in str(caught.value).split(":")[1]
    assert contract_members(ChatEngine) == sorted(set(contract_members(ParseEngine)) | {
        "chat", "context_window", "inference", "max_pixels", "min_pixels"})


@pytest.mark.parametrize("key", sorted({spec.family for spec in list_models() if spec.family != "classic"}))
def test_families_declare_smart_resizing_exactly_when_they_use_the_shared_resize(key):
    family = get_family(key)
    uses_shared_resize = type(family).model_size is BaseFamily.model_size
    assert family.smart_resizes is uses_shared_resize
    assert isinstance(family.server_prompt_prefix, str)


def test_engines_do_not_import_the_chat_feature():
    code = ("import sys, pipelines.engines.transformers_engine, pipelines.engines.openai_engine; "
            "print('pipelines.chat' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False"]
