"""SentencePooling against a NumPy reference, with padding that must not count."""

import keras
import numpy as np
import pytest

from keras_contrastive.text import SentencePooling


def reference(sequence, mask, mode):
    out = []
    for x, m in zip(sequence, mask.astype(bool)):
        real = x[m]
        out.append({"mean": real.mean(0), "cls": x[0], "max": real.max(0)}[mode])
    return np.stack(out)


@pytest.mark.parametrize("mode", ["mean", "cls", "max"])
def test_pooling_matches_numpy_and_ignores_padding(mode, rng):
    lengths = np.array([1, 3, 7, 5])
    mask = (np.arange(7)[None] < lengths[:, None]).astype("int32")
    sequence = rng.normal(size=(4, 7, 6)).astype("float32")
    expected = reference(sequence, mask, mode)
    pooling = SentencePooling(mode)
    out = keras.ops.convert_to_numpy(pooling(sequence, mask))
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    assert out.dtype == np.float32 and out.shape == (4, 6)
    # Huge values in padded positions change nothing.
    noisy = np.where(mask[..., None] > 0, sequence, 1e6).astype("float32")
    out_noisy = keras.ops.convert_to_numpy(pooling(noisy, mask))
    np.testing.assert_allclose(out_noisy, expected, rtol=1e-6, atol=1e-6)


def test_pooling_casts_half_precision_to_float32(rng):
    sequence = rng.normal(size=(2, 3, 4)).astype("float16")
    mask = np.array([[1, 1, 0], [1, 1, 1]], "int32")
    out = SentencePooling("mean")(sequence, mask)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


def test_pooling_config_and_errors():
    layer = SentencePooling("max", name="p")
    assert SentencePooling.from_config(layer.get_config()).mode == "max"
    with pytest.raises(ValueError, match="`mode` must be one of"):
        SentencePooling("sum")
