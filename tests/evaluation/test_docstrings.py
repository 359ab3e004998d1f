"""The runnable examples in the evaluation modules' docstrings (every backend)."""

import doctest
import importlib

import pytest

# By name: the package's `linear_probe` attribute is the function.
MODULES = [
    importlib.import_module(f"keras_contrastive.evaluation.{name}")
    for name in (
        "embeddings",
        "knn",
        "linear_probe",
        "paraphrase",
        "retrieval",
        "semantic_index",
        "sts",
        "texts",
    )
]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
