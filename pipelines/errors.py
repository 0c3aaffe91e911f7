"""Errors users see. Each carries a machine-readable code and an HTTP status for REST."""
from __future__ import annotations


class PipelineError(Exception):
    """An error with a message fit to show a user as-is."""

    status = 400

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class DocumentError(PipelineError):
    """The uploaded document cannot be used (corrupt, unsupported, over a limit)."""

    @property
    def status(self) -> int:  # type: ignore[override]
        return 413 if self.code == "too_large" else 400


class UnknownModelError(PipelineError):
    status = 400


class UnsupportedModeError(PipelineError):
    status = 422


class EngineCapabilityError(PipelineError):
    """The engine cannot do what was asked (e.g. chat with the classic OCR engine)."""

    status = 422


class EngineRunError(PipelineError):
    """The engine's own machinery failed on a page (a helper process crashed or hung)."""

    status = 500


class WeightsUnavailableError(PipelineError):
    """The model's weights cannot be had here; the message says how to get them."""

    status = 503


class PackagesMissingError(PipelineError):
    """Running the model here needs Python packages this install left out (the VLM extra)."""

    status = 503


class ModelLoadError(PipelineError):
    """The weights are there but transformers could not build the model from them."""

    status = 500


class ServerError(PipelineError):
    """An OpenAI-compatible model server (vLLM, SGLang, transformers serve) failed a request."""

    status = 502


class ServerUnavailableError(ServerError):
    """The server could not be reached, kept answering 5xx, or did not answer in time."""

    @property
    def status(self) -> int:  # type: ignore[override]
        return 504 if self.code == "server_timeout" else 503


class ServerRequestError(ServerError):
    """The server refused the request (4xx): context length, unknown model, API key, bad field."""

    status = 400


class ServerResponseError(ServerError):
    """The server answered with something that is not a chat completion."""

    status = 502
