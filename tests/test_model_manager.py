"""The model manager: memory budget, least-recently-used eviction, unloading, one load at a time."""
from __future__ import annotations

import threading
import time

from pipelines.model_manager import ModelManager


class FakeEngine:
    """Stands in for a model: 'loading' takes time and holds memory until unloaded."""

    def __init__(self, name: str, size: int, load_s: float = 0.0):
        self.name, self.size, self.load_s = name, size, load_s
        self.loaded = False
        self.loads = 0
        self.started = threading.Event()

    def load(self) -> float:
        self.started.set()
        time.sleep(self.load_s)
        self.loaded, self.loads = True, self.loads + 1
        return self.load_s

    def unload(self) -> None:
        self.loaded = False

    def memory_bytes(self) -> int:
        return self.size if self.loaded else 0

    def expected_bytes(self) -> int:
        return 0  # unknown before loading: the manager evicts after the load instead

    decoding_note = ""


def test_loads_once_and_reports_load_time():
    manager = ModelManager(budget_bytes=100)
    engine = FakeEngine("a", 10, load_s=0.01)
    assert manager.ensure_loaded("a", engine) == 0.01
    assert manager.ensure_loaded("a", engine) == 0.0
    assert engine.loads == 1
    assert [(m.key, m.memory_bytes) for m in manager.loaded()] == [("a", 10)]


def test_least_recently_used_is_unloaded_over_budget():
    manager = ModelManager(budget_bytes=100)
    a, b, c = FakeEngine("a", 40), FakeEngine("b", 40), FakeEngine("c", 40)
    manager.ensure_loaded("a", a)
    manager.ensure_loaded("b", b)
    manager.ensure_loaded("a", a)  # a is now more recent than b
    manager.ensure_loaded("c", c)
    assert (a.loaded, b.loaded, c.loaded) == (True, False, True)
    assert sorted(m.key for m in manager.loaded()) == ["a", "c"]


def test_a_model_bigger_than_the_budget_still_loads_alone():
    manager = ModelManager(budget_bytes=50)
    small, big = FakeEngine("small", 30), FakeEngine("big", 80)
    manager.ensure_loaded("small", small)
    manager.ensure_loaded("big", big)
    assert (small.loaded, big.loaded) == (False, True)


def test_unload():
    manager = ModelManager(budget_bytes=100)
    engine = FakeEngine("a", 10)
    manager.ensure_loaded("a", engine)
    assert manager.unload("a") is True and engine.loaded is False
    assert manager.unload("a") is False
    assert manager.loaded() == []


def test_a_loaded_model_is_not_blocked_by_another_loading():
    manager = ModelManager(budget_bytes=100)
    ready, slow = FakeEngine("ready", 10), FakeEngine("slow", 10)
    release = threading.Event()
    slow.load = lambda: (slow.started.set(), release.wait(10), setattr(slow, "loaded", True), 0.0)[-1]
    manager.ensure_loaded("ready", ready)
    loader = threading.Thread(target=manager.ensure_loaded, args=("slow", slow))
    loader.start()
    assert slow.started.wait(5)
    user = threading.Thread(target=manager.ensure_loaded, args=("ready", ready))
    user.start()
    user.join(timeout=5)
    finished_while_loading = not user.is_alive() and not slow.loaded
    release.set()
    loader.join()
    assert finished_while_loading and slow.loaded


def test_two_sessions_loading_the_same_model_load_it_once():
    manager = ModelManager(budget_bytes=100)
    engine = FakeEngine("a", 10, load_s=0.2)
    threads = [threading.Thread(target=manager.ensure_loaded, args=("a", engine)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert engine.loads == 1


class EstimatingEngine(FakeEngine):
    def expected_bytes(self) -> int:
        return self.size


def test_evicts_before_loading_not_after():
    manager = ModelManager(budget_bytes=100)
    a, b = EstimatingEngine("a", 60), EstimatingEngine("b", 60)
    manager.ensure_loaded("a", a)
    seen_while_loading = []
    real_load = b.load
    b.load = lambda: (seen_while_loading.append(a.loaded), real_load())[1]
    manager.ensure_loaded("b", b)
    assert seen_while_loading == [False]  # a was gone before b started loading
    assert [m.key for m in manager.loaded()] == ["b"]


def test_a_model_in_use_is_neither_evicted_nor_unloaded():
    import pytest

    from pipelines.model_manager import ModelBusyError

    manager = ModelManager(budget_bytes=100)
    a, b = EstimatingEngine("a", 60), EstimatingEngine("b", 60)
    with manager.using("a", a):
        manager.ensure_loaded("b", b)  # over budget, but a is running a request
        assert a.loaded and b.loaded
        with pytest.raises(ModelBusyError) as caught:
            manager.unload("a")
        assert caught.value.code == "model_busy" and caught.value.status == 409
        assert [m.in_use for m in manager.loaded() if m.key == "a"] == [1]
    assert manager.unload("a") is True and not a.loaded


def test_the_engine_does_not_load_itself_and_the_pipeline_loads_through_the_manager():
    import pytest
    from PIL import Image

    from pipelines import PipelineError, load_pipeline
    from pipelines.documents import Page
    from pipelines.engines.classic import ClassicEngine
    from pipelines.model_manager import MANAGER

    with pytest.raises(PipelineError) as caught:
        ClassicEngine().parse_page(Page(Image.new("RGB", (64, 64), "white"), 0), "layout_all", None)
    assert caught.value.code == "not_loaded"
    pipeline = load_pipeline("classic")
    MANAGER.unload(pipeline.name)
    result = pipeline.parse_document(Image.new("RGB", (64, 64), "white"), "layout_all")
    assert result.pages[0].timings["load_s"] > 0
    assert pipeline.name in [m.key for m in MANAGER.loaded()]  # what is loaded is what the manager says
