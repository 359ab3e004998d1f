"""The runnable examples in the losses' docstrings.

They are backend-neutral and run on the TensorFlow and PyTorch passes; on JAX their
many small new shapes would cost ~15 s of per-primitive compilation for no new
coverage (the same code is tested on JAX by every other file here).
"""

import doctest

import keras
import pytest

from keras_contrastive.losses import (
    barlow_twins,
    hard_negatives,
    metric,
    siglip,
    similarity,
    view_pair,
)

MODULES = [view_pair, metric, similarity, hard_negatives, siglip, barlow_twins]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
@pytest.mark.skipif(
    keras.backend.backend() == "jax", reason="compile-bound on JAX; see module doc"
)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
