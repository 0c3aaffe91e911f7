"""Evaluation: score runs (model:mode) on documents with olmOCR-bench unit tests and page ground truth."""
from .ground_truth import page_truths, similarity
from .runner import evaluate, scores_markdown
from .unit_tests import UnitTest, load_tests, normalise

__all__ = ["UnitTest", "evaluate", "load_tests", "normalise", "page_truths", "scores_markdown", "similarity"]
