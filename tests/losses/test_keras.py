"""Keras plumbing for every class: config round-trip, compile + fit, .keras save/load,
mixed precision."""

import os

import keras
import numpy as np
import pytest

from keras_contrastive import losses as L
from tests.losses.cases import CASES, CLASS_CASES, ids, make_inputs


def np_(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_get_config_round_trip(case, rng):
    loss = case.cls(**case.kwargs, name="my_loss")
    config = loss.get_config()
    for key, value in case.kwargs.items():
        assert config[key] == value
    clone = case.cls.from_config(config)
    assert clone.get_config() == config
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is case.cls and restored.get_config() == config
    y_true, y_pred = make_inputs(case, rng, 4)
    np.testing.assert_allclose(
        np_(restored(y_true, y_pred)), np_(loss(y_true, y_pred)), rtol=1e-6
    )
    none = case.cls(**case.kwargs, reduction=None)
    assert case.cls.from_config(none.get_config()).reduction is None


def _model(out_dim):
    inputs = keras.Input((5,))
    outputs = keras.layers.Dense(out_dim)(inputs)
    return keras.Model(inputs, outputs)


def _training_data(case, rng, n, d=4):
    x = rng.normal(size=(n, 5)).astype("float32")
    if case.kind == "pair":
        # y_true is the other view (fixed targets); the model produces the first.
        return x, rng.normal(size=(n, d)).astype("float32")
    return x, rng.integers(0, 3, size=n)


def test_compile_fit_save_load_every_class(rng, tmp_path):
    """One model with a head per loss class, compiled with all of them at once (one
    train-step compilation instead of one per class), fitted, saved and loaded."""
    n = 16
    x = rng.normal(size=(n, 5)).astype("float32")
    inputs = keras.Input((5,))
    outputs, targets, losses = [], [], []
    for case in CLASS_CASES:
        outputs.append(keras.layers.Dense(4, name=case.name)(inputs))
        targets.append(_training_data(case, rng, n)[1])
        losses.append(case.cls(**case.kwargs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=losses)
    history = model.fit(
        x, targets, batch_size=8, epochs=2, verbose=0, sample_weight=np.ones(n)
    )
    assert np.isfinite(history.history["loss"]).all()

    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    got = loaded(x[:8])
    want = model(x[:8])
    for case, loss, restored, y, out, ref in zip(
        CLASS_CASES, losses, loaded.loss, targets, got, want
    ):
        assert type(restored) is case.cls
        assert restored.get_config() == loss.get_config()
        np.testing.assert_allclose(np_(out), np_(ref), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(
            np_(restored(y[:8], out)), np_(loss(y[:8], ref)), rtol=1e-5, atol=1e-6
        )


def test_mixed_precision_policy_matches_float32(rng):
    x = rng.normal(size=(4, 5)).astype("float32")
    labels = np.array([0, 0, 1, 1])
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = _model(6)
        out16 = model(x)
        assert keras.backend.standardize_dtype(out16.dtype) == "float16"
        out32 = keras.ops.cast(out16, "float32")
        for loss, y in (
            (L.NTXent(0.5), np_(out32)[::-1].copy()),
            (L.SupervisedContrastive(0.1), labels),
        ):
            low = loss(y, out16)
            assert keras.backend.standardize_dtype(low.dtype) == "float32"
            np.testing.assert_allclose(np_(low), np_(loss(y, out32)), atol=1e-3)
        model.compile(optimizer="sgd", loss=L.SupervisedContrastive(0.1))
        history = model.fit(x, labels, batch_size=4, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
    finally:
        keras.config.set_dtype_policy("float32")
