"""`scaled_learning_rate`: SimCLR's two rules against their closed forms."""

import math

import pytest

from keras_contrastive.distribute import scaled_learning_rate


@pytest.mark.parametrize("batch", [1, 256, 1000, 4096])
def test_simclr_linear_rule(batch):
    # SimCLR appendix B.1: LearningRate = 0.3 x BatchSize / 256.
    assert scaled_learning_rate(0.3, batch) == pytest.approx(0.3 * batch / 256)
    assert scaled_learning_rate(0.3, batch, rule="linear") == pytest.approx(
        0.3 * batch / 256
    )


@pytest.mark.parametrize("batch", [1, 256, 1000, 4096])
def test_simclr_square_root_rule(batch):
    # SimCLR appendix B.1: LearningRate = 0.075 x sqrt(BatchSize).
    expected = 0.075 * math.sqrt(batch)
    assert scaled_learning_rate(0.075, batch, rule="sqrt") == pytest.approx(expected)


def test_both_rules_agree_at_4096():
    assert scaled_learning_rate(0.3, 4096) == pytest.approx(4.8)
    assert scaled_learning_rate(0.075, 4096, rule="sqrt") == pytest.approx(4.8)


@pytest.mark.parametrize(
    "rule, base_batch, batch, expected",
    [
        ("linear", 256, 1024, 0.1 * 4),
        ("linear", 64, 32, 0.1 / 2),
        ("sqrt", 256, 1024, 0.1 * 2),
        ("sqrt", 100, 2500, 0.1 * 5),
        ("sqrt", 1, 49, 0.1 * 7),
    ],
)
def test_explicit_reference_batch(rule, base_batch, batch, expected):
    got = scaled_learning_rate(0.1, batch, rule=rule, base_batch_size=base_batch)
    assert got == pytest.approx(expected)


def test_the_rate_at_the_reference_batch_is_the_base_rate():
    for rule in ("linear", "sqrt"):
        got = scaled_learning_rate(0.7, 512, rule=rule, base_batch_size=512)
        assert got == pytest.approx(0.7)


def test_returns_a_python_float():
    assert type(scaled_learning_rate(1, 256)) is float


@pytest.mark.parametrize(
    "args, kwargs, argument",
    [
        ((-0.1, 256), {}, "base_learning_rate"),
        (("0.1", 256), {}, "base_learning_rate"),
        ((0.1, 0), {}, "global_batch_size"),
        ((0.1, 12.5), {}, "global_batch_size"),
        ((0.1, True), {}, "global_batch_size"),
        ((0.1, 256), {"rule": "cubic"}, "rule"),
        ((0.1, 256), {"base_batch_size": 0}, "base_batch_size"),
        ((0.1, 256), {"base_batch_size": 2.5}, "base_batch_size"),
        ((0.1, 256), {"base_batch_size": True}, "base_batch_size"),
    ],
)
def test_bad_arguments(args, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        scaled_learning_rate(*args, **kwargs)
