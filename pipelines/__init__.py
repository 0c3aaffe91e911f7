"""ChatVLMLLM's document-parsing library: intake, engines, the result contract and renderers."""
from .catalogue import CATALOGUE, ModelSpec, get_spec, list_models
from .documents import Document, Limits, Page, load_document, parse_page_selection
from .engines import ParseOptions
from .errors import DocumentError, EngineCapabilityError, PipelineError, UnknownModelError, UnsupportedModeError
from .pipeline import Pipeline, load_pipeline
from .schema import CATEGORIES, MODES, DocumentResult, Element, PageResult

__all__ = [
    "CATALOGUE", "CATEGORIES", "MODES", "Document", "DocumentError", "DocumentResult", "Element",
    "EngineCapabilityError", "Limits", "ModelSpec", "Page", "PageResult", "ParseOptions", "Pipeline",
    "PipelineError", "UnknownModelError", "UnsupportedModeError", "get_spec", "list_models",
    "load_document", "load_pipeline", "parse_page_selection",
]
