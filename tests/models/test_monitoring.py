"""The logged retrieval accuracy, dense and in row blocks, against NumPy."""

import keras
import numpy as np
import pytest

from keras_contrastive.losses._streaming import default_block_size
from keras_contrastive.models.monitoring import nt_xent_accuracy
from tests.conftest import BACKEND


def numpy_nt_xent_accuracy(z_a, z_b):
    """Row i of [z_a; z_b] retrieves its twin (i +- N) among the other 2N - 1 rows."""
    z = np.concatenate([z_a, z_b]).astype("float64")
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    similarity = z @ z.T
    np.fill_diagonal(similarity, -np.inf)
    n = len(z_a)
    twin = np.concatenate([np.arange(n) + n, np.arange(n)])
    return float(np.mean(similarity.argmax(axis=1) == twin))


def _views(n, d=8, noise=0.9, seed=0):
    rng = np.random.default_rng(seed)
    z_a = rng.normal(size=(n, d)).astype("float32")
    # Noisy twins: some rows retrieve their twin, some do not.
    return z_a, (z_a + noise * rng.normal(size=(n, d))).astype("float32")


@pytest.mark.parametrize("n, block_size", [(13, 4), (16, 8), (5, 64)])
def test_blocked_accuracy_equals_numpy(n, block_size):
    z_a, z_b = _views(n)
    expected = numpy_nt_xent_accuracy(z_a, z_b)
    assert 0.0 < expected < 1.0  # the case tells hits from misses
    dense = float(keras.ops.convert_to_numpy(nt_xent_accuracy(z_a, z_b)))
    blocked = nt_xent_accuracy(z_a, z_b, block_size=block_size)
    assert dense == pytest.approx(expected, abs=1e-7)
    assert float(keras.ops.convert_to_numpy(blocked)) == pytest.approx(
        expected, abs=1e-7
    )


def test_default_block_size_context_streams_large_batches_only():
    z_a, z_b = _views(40)
    expected = numpy_nt_xent_accuracy(z_a, z_b)
    with default_block_size(16, min_rows=64):  # 80 rows > 64: blocks of 16
        blocked = nt_xent_accuracy(z_a, z_b)
    assert float(keras.ops.convert_to_numpy(blocked)) == pytest.approx(
        expected, abs=1e-7
    )


@pytest.mark.skipif(BACKEND != "tensorflow", reason="a dynamic batch size is TF's")
def test_blocked_accuracy_with_a_batch_size_unknown_in_python():
    import tensorflow as tf

    z_a, z_b = _views(21)
    spec = tf.TensorSpec((None, 8), tf.float32)

    @tf.function(input_signature=[spec, spec])
    def accuracy(a, b):
        return nt_xent_accuracy(a, b, block_size=8)

    result = float(accuracy(tf.constant(z_a), tf.constant(z_b)))
    assert result == pytest.approx(numpy_nt_xent_accuracy(z_a, z_b), abs=1e-7)
