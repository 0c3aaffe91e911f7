"""REST routes: POST /analyze_layout, /chat, /compare, /region_text; GET /models, /health.
Errors are JSON with a code."""
from __future__ import annotations

import json
import logging
import os
from typing import Callable

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from .admission import WORK, BusyError
from .catalogue import list_models
from .documents import DEFAULT_DPI, Limits, load_document, mib
from .errors import DocumentError, PipelineError
from .http_guards import BodyReadTimeout, BodySizeLimit, SecurityHeaders, UploadDiskBudget
from .engines.base import ParseOptions
from .pipeline import load_pipeline

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error of every route: {"error": {"code", "message"}}."""

    error: ErrorDetail


def _documented(*statuses: int) -> dict:
    what = {400: "Bad input (file, field, unknown model)", 408: "The request body did not arrive in time",
            413: "Over a limit (bytes, pages, pixels)", 422: "Mode or action not supported by the model",
            500: "Unexpected server error (logged)", 502: "A model server answered badly",
            503: "Busy (Retry-After), weights or server unavailable, or the VLM packages not installed", 504: "A model server timed out",
            507: "Out of memory on this document"}
    return {status: {"model": ErrorBody, "description": what[status]} for status in statuses}


MODEL_ROUTE_ERRORS = _documented(400, 408, 413, 422, 500, 502, 503, 504, 507)


def max_body_bytes(limits: Limits) -> int:
    """The largest request body taken: one upload at the limit plus room for the form's other fields."""
    return limits.max_bytes + 2**20


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}}, headers=headers)


def create_rest_app(limits: Limits = Limits(), make_room: Callable[[int], bool] | None = None) -> FastAPI:
    """The REST routes, with the guards every route of the process gets (the Gradio app is mounted
    inside it). make_room: the disk budget's check before an upload is stored (ui/storage.py)."""
    app = FastAPI(title="ChatVLMLLM", summary="Read documents with vision-language models and OCR.")
    # Added inner to outer: the size limit answers first, then the disk budget, then the rest.
    app.add_middleware(BodyReadTimeout, timeout_s=float(os.environ.get("CHATVLMLLM_BODY_TIMEOUT_S", "30")))
    if make_room is not None:
        app.add_middleware(UploadDiskBudget, make_room=make_room, assumed_bytes=max_body_bytes(limits))
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes(limits))
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(PipelineError)
    async def pipeline_error(request: Request, error: PipelineError) -> JSONResponse:
        headers = {"Retry-After": str(error.retry_after_s)} if isinstance(error, BusyError) else None
        return _error(error.status, error.code, error.message, headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # Starlette's own refusals (a malformed multipart body, an unknown route, a wrong method)
        # in the same shape as ours.
        codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        return _error(error.status_code, codes.get(error.status_code, f"http_{error.status_code}"),
                      str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return _error(500, "internal", f"The server failed unexpectedly ({type(error).__name__}); the error is logged.")

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
        """The catalogue; per model whether its weights are bundled, already on disk ("local") or a
        download, the download's size in GB (null where the hub cannot be asked), and the Python
        packages running it locally needs that this install lacks (the VLM extra)."""
        from .engines.hf_loading import download_gb, missing_packages, weights_status

        return {"models": [
            {"key": s.key, "label": s.label, "family": s.family, "engine": s.engine,
             "modes": list(s.modes), "default_mode": s.default_mode, "can_chat": s.can_chat,
             "hub_id": s.hub_id, "description": s.description,
             "weights": weights_status(s), "download_gb": download_gb(s),
             "missing_packages": missing_packages(s)}
            for s in list_models()
        ]}

    @app.get("/languages")
    def languages() -> dict:
        """Languages classic can read beyond its built-in English and Chinese: the installed
        Tesseract language data, and the Debian package each known language needs."""
        from .engines.tesseract_ocr import LANGUAGE_NAMES, debian_package, installed_languages

        installed = installed_languages()
        return {"languages": [
            {"code": code, "name": LANGUAGE_NAMES.get(code, code), "installed": code in installed,
             "debian_package": debian_package(code)}
            for code in sorted(set(LANGUAGE_NAMES) | set(installed))
        ]}

    @app.post("/analyze_layout", responses=MODEL_ROUTE_ERRORS)
    def analyze_layout(
        file: UploadFile = File(..., description="An image (PNG, JPEG, WebP, TIFF, BMP, GIF) or a PDF."),
        model: str = Form("classic"),
        mode: str | None = Form(None),
        dpi: float = Form(DEFAULT_DPI),
        pages: str | None = Form(None),
        language: str | None = Form(None, description='classic: Tesseract languages such as "rus+eng" for scripts '
                                                      "beyond English and Chinese (GET /languages)."),
    ) -> dict:
        pipeline = load_pipeline(model)
        mode = pipeline.spec.check_mode(mode)  # refuse a bad mode or option before reading the upload
        options = ParseOptions(language=language or None)
        with WORK.slot():  # reading and decoding the upload are work too: bounded like the rest
            data = _read_upload(file, limits)
            result = pipeline.parse_document(data, mode, dpi=dpi, pages=pages, limits=limits,
                                             name=file.filename or "upload", options=options)
        body = result.to_dict()
        if len(result.pages) == 1:
            body["elements"] = body["pages"][0]["elements"]  # the single-image shape users know
        return body

    @app.post("/chat", responses=MODEL_ROUTE_ERRORS)
    def chat(
        file: UploadFile = File(..., description="The image or PDF the conversation is about."),
        messages: str = Form(..., description='JSON list of {"role": "system"|"user"|"assistant", "content": ...}; '
                                              "the last one is the user's question."),
        model: str = Form(..., description="A chat-capable catalogue key (see GET /models, can_chat)."),
        page: int = Form(1, description="1-based page of a PDF."),
        page_text: bool = Form(False, description="Add the page's text, parsed now by the classic engine, as context."),
        max_new_tokens: int | None = Form(None),
        dpi: float = Form(DEFAULT_DPI),
    ) -> dict:
        """The answer as Pipeline.chat gives it, with the boxes it names (page pixels) and notes."""
        from .chat import chat_reply

        conversation = _json_messages(messages)
        pipeline = load_pipeline(model)
        with WORK.slot():  # reading and decoding the upload are work too: bounded like the rest
            data = _read_upload(file, limits)
            return chat_reply(pipeline, data, conversation, page=page, page_text=page_text,
                              max_new_tokens=max_new_tokens, dpi=dpi).to_dict()

    @app.post("/compare", responses=MODEL_ROUTE_ERRORS)
    def compare(
        file: UploadFile = File(..., description="An image or PDF."),
        runs: str = Form(..., description="2-4 runs, comma-separated model:mode, e.g. classic:layout_all,got_ocr2:text_only"),
        page: int = Form(1, description="1-based page of a PDF."),
        dpi: float = Form(DEFAULT_DPI),
    ) -> dict:
        """Every run on the same page: per-run results, timings and counts, plus a diff of the first two."""
        from .compare import compare_page, parse_runs

        chosen = parse_runs(runs)
        with WORK.slot():  # reading and decoding the upload are work too: bounded like the rest
            data = _read_upload(file, limits)
            document = load_document(data, dpi=dpi, pages=str(page), limits=limits, name=file.filename or "upload")
            return compare_page(document.pages[0], chosen, source=document.name).to_dict()

    @app.post("/region_text", responses=MODEL_ROUTE_ERRORS)
    def region_text(
        file: UploadFile = File(..., description="An image or PDF."),
        box: str = Form(..., description="x1, y1, x2, y2 in page pixels."),
        model: str = Form(...),
        page: int = Form(1, description="1-based page of a PDF."),
        dpi: float = Form(DEFAULT_DPI),
    ) -> dict:
        """The text inside the box: the model's region mode where it has one, else the cropped region."""
        from .region import parse_box, read_region

        region = parse_box(box)
        if region is None:
            raise PipelineError("bad_region", "Give the region as x1, y1, x2, y2 in page pixels.")
        pipeline = load_pipeline(model)
        with WORK.slot():  # reading and decoding the upload are work too: bounded like the rest
            data = _read_upload(file, limits)
            document = load_document(data, dpi=dpi, pages=str(page), limits=limits)
            return read_region(pipeline, document.pages[0], region).to_dict()

    def wrong_method(request: Request) -> JSONResponse:
        return _error(405, "method_not_allowed", f"{request.url.path} takes POST.")

    # The Gradio app is mounted at "/", so without these a wrong method on a REST route would
    # fall through to it and get Gradio's 404 instead of this contract's 405.
    for path in ("/analyze_layout", "/chat", "/compare", "/region_text"):
        app.add_api_route(path, wrong_method, methods=["GET", "PUT", "PATCH", "DELETE"], include_in_schema=False)

    return app


def _read_upload(file: UploadFile, limits: Limits) -> bytes:
    data = file.file.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise DocumentError("too_large", f"Upload exceeds the limit (max_bytes) of {mib(limits.max_bytes)}.")
    return data


def _json_messages(text: str) -> list[dict]:
    try:
        messages = json.loads(text)
    except json.JSONDecodeError as error:
        raise PipelineError("bad_messages", f"messages is not valid JSON: {error.msg} at character {error.pos}.") from None
    if not isinstance(messages, list):
        raise PipelineError("bad_messages", "messages must be a JSON list of {role, content} objects.")
    return messages
