"""The Parse tab's handler (ui.parse_tab.parse) with a stand-in pipeline: no model, no server."""
from __future__ import annotations

from types import SimpleNamespace

from PIL import Image

from pipelines import DocumentResult, PageResult
from pipelines.documents import Document, Page


def test_streamed_text_names_the_page_that_finished(monkeypatch, tmp_path):
    from ui import parse_tab

    document = Document("doc.pdf", "pdf", [Page(Image.new("RGB", (40, 60), "white"), n) for n in (0, 1, 6)], 7)

    class OutOfOrder:  # like the openai backend: pages finish in any order
        spec = SimpleNamespace(check_mode=lambda mode: mode)

        def parse_pages(self, document, mode, options, on_page=None, on_result=None):
            results = [PageResult(p.number, 40, 60, "stand-in", mode) for p in document.pages]
            for done, index in enumerate((2, 0, 1), start=1):
                options.on_text(f"[text of page {document.pages[index].number + 1}]")
                on_result(results[index])
                on_page(done, len(results))
            return DocumentResult(document.name, "stand-in", mode, results)

    monkeypatch.setattr(parse_tab, "session_pipeline", lambda model, server_urls, served_model: OutOfOrder())
    monkeypatch.setattr(parse_tab, "load_document", lambda *args, **kwargs: document)
    monkeypatch.setattr(parse_tab, "STREAM_INTERVAL_S", -1.0)  # every event yields
    upload = tmp_path / "doc.pdf"
    upload.write_bytes(b"%PDF-1.4 stand-in")
    progress = []
    updates = list(parse_tab.parse(str(upload), "classic", "layout_all", 200, "1,2,7", None, None, None, False,
                                   progress=lambda share, desc="": progress.append(desc)))
    streamed = updates[-2][2]
    assert streamed.index("--- page 7 done ---") < streamed.index("--- page 1 done ---")
    assert "--- page 2" not in streamed  # it finished last: nothing follows it
    assert "--- page 3" not in streamed  # never a page number made from a count
    assert [p.split(" · ")[0] for p in progress[-3:]] == ["Parsed 1 of 3 pages", "Parsed 2 of 3 pages",
                                                         "Parsed 3 of 3 pages"]
    assert all(p.split(" · ")[1].endswith(" s") for p in progress[-3:])  # the total time so far, not per page
    assert updates[-1][-1]["digest"] and len(updates[-1][-1]["annotated"]) == 3
    # Each page shows as it finishes (annotated image, Markdown, JSON), before the last one is done.
    shown = [u[3]["page"] for u in updates[:-1] if isinstance(u[3], dict) and "page" in u[3]]
    assert shown == [6, 0, 1]
    first = next(u for u in updates if isinstance(u[3], dict) and "page" in u[3])
    assert first[0].endswith("page_007.png")
