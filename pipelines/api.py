"""REST routes: POST /analyze_layout, GET /models, GET /health. Errors are JSON with a code."""
from __future__ import annotations

import logging

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .catalogue import list_models
from .documents import DEFAULT_DPI, Limits
from .errors import DocumentError, PipelineError
from .pipeline import load_pipeline

log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def create_rest_app(limits: Limits = Limits()) -> FastAPI:
    app = FastAPI(title="ChatVLMLLM", summary="Read documents with vision-language models and OCR.")

    @app.exception_handler(PipelineError)
    async def pipeline_error(request: Request, error: PipelineError) -> JSONResponse:
        return _error(error.status, error.code, error.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
            for e in error.errors()
        )
        return _error(400, "bad_request", problems or "Malformed request.")

    @app.exception_handler(MemoryError)
    async def out_of_memory(request: Request, error: MemoryError) -> JSONResponse:
        return _error(507, "out_of_memory", "The server ran out of memory on this document; try fewer pages or a lower DPI.")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/models")
    def models() -> dict:
        return {"models": [
            {"key": s.key, "label": s.label, "family": s.family, "engine": s.engine,
             "modes": list(s.modes), "default_mode": s.default_mode, "can_chat": s.can_chat,
             "hub_id": s.hub_id, "description": s.description}
            for s in list_models()
        ]}

    @app.post("/analyze_layout")
    def analyze_layout(
        file: UploadFile = File(..., description="An image (PNG, JPEG, WebP, TIFF, BMP, GIF) or a PDF."),
        model: str = Form("classic"),
        mode: str | None = Form(None),
        dpi: float = Form(DEFAULT_DPI),
        pages: str | None = Form(None),
    ) -> dict:
        pipeline = load_pipeline(model)
        mode = pipeline.spec.check_mode(mode)  # refuse a bad mode before reading the upload
        data = file.file.read(limits.max_bytes + 1)
        if len(data) > limits.max_bytes:
            raise DocumentError(
                "too_large", f"Upload exceeds the limit (max_bytes) of {limits.max_bytes / 1e6:.0f} MB."
            )
        result = pipeline.parse_document(
            data, mode, dpi=dpi, pages=pages, limits=limits, name=file.filename or "upload"
        )
        body = result.to_dict()
        if len(result.pages) == 1:
            body["elements"] = body["pages"][0]["elements"]  # the single-image shape users know
        return body

    return app
