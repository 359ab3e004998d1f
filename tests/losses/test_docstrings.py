"""The runnable examples in the losses' docstrings."""

import doctest

import pytest

from keras_contrastive.losses import (
    hard_negatives,
    metric,
    similarity,
    view_pair,
)


@pytest.mark.parametrize(
    "module", [view_pair, metric, similarity, hard_negatives], ids=lambda m: m.__name__
)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
