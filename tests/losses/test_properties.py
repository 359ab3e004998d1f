"""Hypothesis: finite values and gradients over random shapes, temperatures, duplicate
and zero rows, extreme scales; low-precision inputs give the float32 answer."""

import keras
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.losses._run import value_and_grad
from tests.losses.cases import LABEL_BUILDERS, PAIR_BUILDERS, label_fn, pair_fn

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)


def _pair_losses(temperature):
    return [build(temperature) for build in PAIR_BUILDERS.values()]


def _label_losses(margin, temperature):
    return [build(margin, temperature) for build in LABEL_BUILDERS.values()]


@st.composite
def embeddings(draw, min_rows):
    # The shapes the other tests use: eager JAX compiles every primitive once per
    # shape, so new shapes would spend the time budget compiling, not testing.
    n = draw(st.sampled_from([r for r in (1, 4, 12) if r >= min_rows]))
    d = 6
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([1e-4, 1.0, 30.0]))
    rng = np.random.default_rng(seed)
    x = scale * rng.normal(size=(n, d))
    if draw(st.booleans()):  # zero rows
        x[rng.integers(0, n, size=max(1, n // 3))] = 0.0
    if draw(st.booleans()) and n > 1:  # duplicate rows
        x[1:] = x[rng.integers(0, n - 1)]
    return x, rng


def _assert_finite(key, fn, args, argnums):
    value, grads = value_and_grad(key, fn, args, argnums)
    assert np.isfinite(value), key
    for g in grads:
        assert np.all(np.isfinite(g)), key


@SETTINGS
@given(
    data=embeddings(min_rows=2),
    temperature=st.sampled_from([0.01, 0.07, 0.5, 3.0]),
    duplicate_views=st.booleans(),
)
def test_view_pair_losses_finite(data, temperature, duplicate_views):
    z_a, rng = data
    z_b = z_a.copy() if duplicate_views else rng.normal(size=z_a.shape)
    for name in PAIR_BUILDERS:
        _assert_finite(name, pair_fn(name), (z_a, z_b, temperature), (0, 1))


@SETTINGS
@given(
    data=embeddings(min_rows=1),
    num_classes=st.integers(1, 4),
    margin=st.sampled_from([0.0, 0.5, 2.0]),
    temperature=st.sampled_from([0.01, 0.1, 1.0]),
)
def test_label_losses_finite(data, num_classes, margin, temperature):
    x, rng = data
    labels = rng.integers(0, num_classes, size=len(x))
    for name in LABEL_BUILDERS:
        _assert_finite(name, label_fn(name), (labels, x, margin, temperature), (1,))


@settings(max_examples=4, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**31 - 1),
    policy=st.sampled_from(["mixed_float16", "mixed_bfloat16"]),
)
def test_low_precision_inputs_give_float32_answer(seed, policy):
    n = 4
    rng = np.random.default_rng(seed)
    low_dtype = policy.split("_")[1]
    keras.config.set_dtype_policy(policy)
    try:
        z_a = keras.ops.cast(rng.normal(size=(n, 6)), low_dtype)
        z_b = keras.ops.cast(rng.normal(size=(n, 6)), low_dtype)
        a32, b32 = keras.ops.cast(z_a, "float32"), keras.ops.cast(z_b, "float32")
        labels = rng.integers(0, 2, size=n)
        for loss in _pair_losses(0.1):
            low = keras.ops.convert_to_numpy(loss(z_a, z_b))
            assert low.dtype == np.float32
            want = keras.ops.convert_to_numpy(loss(a32, b32))
            np.testing.assert_allclose(low, want, atol=1e-3, rtol=1e-3)
        for loss in _label_losses(1.0, 0.1):
            low = keras.ops.convert_to_numpy(loss(labels, z_a))
            want = keras.ops.convert_to_numpy(loss(labels, a32))
            np.testing.assert_allclose(low, want, atol=1e-3, rtol=1e-3)
    finally:
        keras.config.set_dtype_policy("float32")
