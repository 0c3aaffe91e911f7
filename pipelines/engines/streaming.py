"""Turning a producer that calls on_text(piece) into an iterator of pieces."""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

Producer = Callable[[Callable[[str], None], threading.Event], None]  # (on_text, stop) -> None


def stream_pieces(produce: Producer, name: str) -> Iterator[str]:
    """Run produce(on_text, stop) in a thread and yield each piece it emits. Closing the iterator
    sets stop (generation ends early); an error in the producer is re-raised in the consumer."""
    pieces: queue.Queue = queue.Queue()
    stop = threading.Event()
    done = object()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            produce(pieces.put, stop)
        except BaseException as error:  # noqa: BLE001 - re-raised in the consumer's thread
            failures.append(error)
        finally:
            pieces.put(done)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while (piece := pieces.get()) is not done:
            yield piece
    finally:
        stop.set()
        thread.join()
    if failures:
        raise failures[0]
