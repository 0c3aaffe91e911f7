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
    engine: str  # how it runs: "classic" or "transformers"
    modes: tuple[str, ...]
    description: str
    hub_id: str | None = None
    can_chat: bool = False
    aliases: tuple[str, ...] = ()
    # Other checkpoints of the same architecture and family: (preset name, hub id), chosen with
    # load_pipeline(key, preset=name).
    presets: tuple[tuple[str, str], ...] = ()
    # How a model without a region mode reads a cropped region (the Region tab): plain text by
    # default; classic keeps its layout there (it costs little, and a marked table stays a table).
    crop_mode: str = "text_only"

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
            crop_mode="layout_all",
            description="Embedded CPU engine: RapidOCR (PP-OCRv6 det/rec) and the CDLA layout "
            "model, both shipped inside their pip wheels. Works offline with no GPU.",
        ),
        ModelSpec(
            key="dots_ocr",
            label="dots.ocr (layout + text, 1.7B)",
            family="dots",
            engine="transformers",
            modes=("layout_all", "layout_only", "text_only", "region_text"),
            description="rednote-hilab/dots.ocr: the whole page's layout (11 categories) with text, "
            "tables as HTML and formulas as LaTeX, in reading order.",
            hub_id="rednote-hilab/dots.ocr",
            presets=(("mocr", "rednote-hilab/dots.mocr"),),
        ),
        ModelSpec(
            key="qwen2_vl_2b",
            label="Qwen2-VL 2B Instruct",
            family="qwen2_vl",
            engine="transformers",
            modes=("text_only", "free_prompt", "region_text"),
            description="Qwen/Qwen2-VL-2B-Instruct: general vision-language model; reads text, answers "
            "questions about the page, grounds answers with boxes.",
            hub_id="Qwen/Qwen2-VL-2B-Instruct",
            can_chat=True,
            aliases=("qwen_vl_2b",),
        ),
        ModelSpec(
            key="qwen2_5_vl_3b",
            label="Qwen2.5-VL 3B Instruct",
            family="qwen2_5_vl",
            engine="transformers",
            modes=("layout_all", "text_only", "free_prompt"),
            description="Qwen/Qwen2.5-VL-3B-Instruct: general vision-language model with JSON grounding "
            "(boxes in input pixels). Presets: olmOCR-2 (7B) and Nanonets-OCR2 (3B), fine-tunes of it.",
            hub_id="Qwen/Qwen2.5-VL-3B-Instruct",
            can_chat=True,
            presets=(("olmocr2", "allenai/olmOCR-2-7B-1025"), ("nanonets_ocr2", "nanonets/Nanonets-OCR2-3B")),
        ),
        ModelSpec(
            key="qwen3_vl_2b",
            label="Qwen3-VL 2B Instruct",
            family="qwen3_vl",
            engine="transformers",
            modes=("layout_all", "text_only", "free_prompt"),
            description="Qwen/Qwen3-VL-2B-Instruct: general vision-language model with JSON grounding "
            "(boxes on a 0-1000 scale).",
            hub_id="Qwen/Qwen3-VL-2B-Instruct",
            can_chat=True,
            presets=(("4b", "Qwen/Qwen3-VL-4B-Instruct"), ("8b", "Qwen/Qwen3-VL-8B-Instruct")),
        ),
        ModelSpec(
            key="got_ocr2",
            label="GOT-OCR 2.0 (plain or formatted text)",
            family="got",
            engine="transformers",
            modes=("text_only", "text_formatted", "region_text"),
            description="stepfun-ai/GOT-OCR-2.0-hf: end-to-end OCR of the page as plain text, or as "
            "Markdown / LaTeX with format; reads a marked region. No layout boxes.",
            hub_id="stepfun-ai/GOT-OCR-2.0-hf",
            aliases=("got_ocr_hf",),
        ),
        ModelSpec(
            key="paddleocr_vl",
            label="PaddleOCR-VL 0.9B (text, tables, formulas, charts)",
            family="paddleocr_vl",
            engine="transformers",
            modes=("text_only", "table", "formula", "chart"),
            description="PaddlePaddle/PaddleOCR-VL: element-level recognition by task prompt: text, a "
            "table (HTML), a formula (LaTeX) or a chart (as a table). No layout boxes.",
            hub_id="PaddlePaddle/PaddleOCR-VL",
        ),
        ModelSpec(
            key="lighton_ocr",
            label="LightOnOCR-2 1B (page to Markdown)",
            family="lighton",
            engine="transformers",
            modes=("text_only",),
            description="lightonai/LightOnOCR-2-1B: the whole page as Markdown, from the image alone.",
            hub_id="lightonai/LightOnOCR-2-1B",
        ),
        ModelSpec(
            key="glm_ocr",
            label="GLM-OCR (text, tables, formulas)",
            family="glm_ocr",
            engine="transformers",
            modes=("text_only", "table", "formula"),
            description="zai-org/GLM-OCR: recognition by task prompt: text (Markdown), a table (HTML) "
            "or a formula (LaTeX). No layout boxes.",
            hub_id="zai-org/GLM-OCR",
        ),
        ModelSpec(
            key="florence2",
            label="Florence-2 large (OCR, OCR with regions)",
            family="florence2",
            engine="transformers",
            modes=("text_only", "text_regions", "region_text"),
            description="florence-community/Florence-2-large: OCR by task token; with regions, one box "
            "per text line.",
            hub_id="florence-community/Florence-2-large",
        ),
        ModelSpec(
            key="deepseek_ocr2",
            label="DeepSeek-OCR-2 (grounded Markdown)",
            family="deepseek_ocr",
            engine="transformers",
            modes=("layout_all", "text_only"),
            description="deepseek-community/DeepSeek-OCR-2: the page as Markdown with a box and a "
            "label before each element, or plain OCR.",
            hub_id="deepseek-community/DeepSeek-OCR-2",
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
