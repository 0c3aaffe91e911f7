"""The model catalogue: one entry per model key, with its family, engine and the modes it offers."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import UnknownModelError, UnsupportedModeError
from .schema import MODES


@dataclass(frozen=True)
class ModelSpec:
    key: str
    label: str
    family: str  # how prompts are written and outputs parsed
    engine: str  # how it runs: "classic", later "transformers" / "openai"
    modes: tuple[str, ...]
    description: str
    hub_id: str | None = None
    can_chat: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def default_mode(self) -> str:
        return self.modes[0]

    def check_mode(self, mode: str | None) -> str:
        mode = mode or self.default_mode
        if mode not in MODES:
            raise UnsupportedModeError("unknown_mode", f"Unknown mode {mode!r}; modes are {list(MODES)}.")
        if mode not in self.modes:
            raise UnsupportedModeError(
                "mode_not_supported",
                f"Model {self.key!r} does not support mode {mode!r}; it supports {list(self.modes)}.",
            )
        return mode


CATALOGUE: dict[str, ModelSpec] = {
    spec.key: spec
    for spec in (
        ModelSpec(
            key="classic",
            label="classic (CPU OCR: PP-OCRv6 + CDLA layout)",
            family="classic",
            engine="classic",
            modes=("layout_all", "layout_only", "text_only"),
            description="Embedded CPU engine: RapidOCR (PP-OCRv6 det/rec) and the CDLA layout "
            "model, both shipped inside their pip wheels. Works offline with no GPU.",
        ),
    )
}

DEFAULT_MODEL = "classic"


def get_spec(key: str) -> ModelSpec:
    """The catalogue entry for a key or one of its aliases."""
    if key in CATALOGUE:
        return CATALOGUE[key]
    for spec in CATALOGUE.values():
        if key in spec.aliases:
            return spec
    raise UnknownModelError("unknown_model", f"Unknown model {key!r}; available: {sorted(CATALOGUE)}.")


def list_models() -> list[ModelSpec]:
    return list(CATALOGUE.values())
