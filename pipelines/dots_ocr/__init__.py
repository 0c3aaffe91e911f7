"""rednote-hilab/dots.ocr (and dots.mocr) as native transformers classes: no remote code.

Importing this package registers the classes with the Auto factories; the published checkpoint
then loads unchanged (every tensor name and shape maps):

    import pipelines.dots_ocr  # noqa: F401  registers model_type "dots_ocr"
    from transformers import AutoModelForCausalLM, AutoProcessor
    model = AutoModelForCausalLM.from_pretrained("rednote-hilab/dots.ocr", dtype=torch.bfloat16)
    processor = AutoProcessor.from_pretrained("rednote-hilab/dots.ocr")

A local registration wins over the checkpoint's `auto_map`, so `trust_remote_code` is not needed
(and the remote code is not run even when it is passed).
"""
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor

from .configuration import DotsOCRConfig, DotsVisionConfig
from .modeling import DotsOCRForCausalLM, DotsPreTrainedModel
from .processing import CHAT_TEMPLATE, IMAGE_PROCESSOR_SETTINGS, IMAGE_TOKEN, DotsVLProcessor
from .vision import DotsVisionTransformer


def register() -> None:
    """Idempotent: safe to call again (e.g. after another module imported the package)."""
    AutoConfig.register(DotsOCRConfig.model_type, DotsOCRConfig, exist_ok=True)
    AutoConfig.register(DotsVisionConfig.model_type, DotsVisionConfig, exist_ok=True)
    AutoModel.register(DotsVisionConfig, DotsVisionTransformer, exist_ok=True)
    AutoModelForCausalLM.register(DotsOCRConfig, DotsOCRForCausalLM, exist_ok=True)
    AutoModelForImageTextToText.register(DotsOCRConfig, DotsOCRForCausalLM, exist_ok=True)
    AutoProcessor.register(DotsOCRConfig, DotsVLProcessor, exist_ok=True)


register()

__all__ = [
    "CHAT_TEMPLATE", "IMAGE_PROCESSOR_SETTINGS", "IMAGE_TOKEN", "DotsOCRConfig", "DotsOCRForCausalLM",
    "DotsPreTrainedModel", "DotsVLProcessor", "DotsVisionConfig", "DotsVisionTransformer", "register",
]
