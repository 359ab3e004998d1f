"""`synchronize_batch_norm`: the copy computes what the original does, and on
4 virtual devices it gives the single-device step where plain batch norm does not.

The 4-device runs happen in a subprocess (tests/distribute/sync_bn_run.py), as in
test_equality.py: TensorFlow with 4 logical CPUs under `MirroredStrategy`, JAX with
4 host devices under `keras.distribution.DataParallel`.
"""

import keras
import numpy as np
import pytest

from keras_contrastive.distribute import synchronize_batch_norm
from keras_contrastive.layers import ProjectionHead
from tests.distribute.four_devices import (
    BACKEND,
    assert_four_devices_used,
    needs_devices,
    run_on_four_devices,
    single_and_multi,
)
from tests.methods.helpers import to_numpy

EPSILON = 1e-3  # BatchNormalization's default


def functional_with_nested_sequential():
    """Dense -> BN -> [Dense -> BN] (a nested Sequential) -> ReLU."""
    inputs = keras.Input((5,))
    x = keras.layers.Dense(4, name="dense_a")(inputs)
    x = keras.layers.BatchNormalization(name="bn_a")(x)
    inner = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3, name="dense_b"),
            keras.layers.BatchNormalization(name="bn_b"),
        ],
        name="inner",
    )
    outputs = keras.layers.ReLU()(inner(x))
    return keras.Model(inputs, outputs)


def randomize(model, rng):
    """Random weights, moving variances > 0: the copy cannot match by default."""
    for variable in model.variables:
        value = rng.normal(size=variable.shape)
        if "variance" in variable.path:
            value = rng.uniform(0.5, 2.0, size=variable.shape)
        variable.assign(value.astype(variable.dtype))


def numpy_forward(model, x):
    """The model's inference output in NumPy (float64), from its weights."""
    inner = model.get_layer("inner")
    blocks = [
        (model.get_layer("dense_a"), model.get_layer("bn_a")),
        (inner.get_layer("dense_b"), inner.get_layer("bn_b")),
    ]
    h = np.asarray(x, np.float64)
    for dense, norm in blocks:
        kernel, bias = (to_numpy(w).astype(np.float64) for w in dense.weights)
        gamma, beta, mean, variance = (
            to_numpy(w).astype(np.float64) for w in norm.weights
        )
        h = h @ kernel + bias
        h = (h - mean) / np.sqrt(variance + EPSILON) * gamma + beta
    return np.maximum(h, 0.0)


def batch_norms(model):
    return [
        layer
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


@pytest.fixture
def original_and_copy():
    rng = np.random.default_rng(0)
    model = functional_with_nested_sequential()
    randomize(model, rng)
    return model, synchronize_batch_norm(model), rng


def test_copy_has_the_same_weights(original_and_copy):
    model, copy, _ = original_and_copy
    assert copy is not model
    assert [w.shape for w in copy.weights] == [w.shape for w in model.weights]
    for ours, theirs in zip(copy.weights, model.weights):
        assert ours is not theirs
        np.testing.assert_array_equal(to_numpy(ours), to_numpy(theirs))


def test_copy_computes_the_original_inference_output(original_and_copy):
    model, copy, rng = original_and_copy
    x = rng.normal(size=(6, 5)).astype("float32")
    expected = numpy_forward(model, x.astype(np.float64))
    np.testing.assert_allclose(to_numpy(model(x)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(copy(x)), expected, rtol=1e-5, atol=1e-5)


def test_copy_trains_like_the_original_on_one_device(original_and_copy):
    # Without a strategy the global batch is the local one: same batch statistics.
    model, copy, rng = original_and_copy
    x = rng.normal(size=(6, 5)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(copy(x, training=True)),
        to_numpy(model(x, training=True)),
        rtol=1e-5,
        atol=1e-5,
    )
    for ours, theirs in zip(batch_norms(copy), batch_norms(model)):
        np.testing.assert_allclose(
            to_numpy(ours.moving_variance), to_numpy(theirs.moving_variance), 1e-6
        )


def test_every_batch_norm_is_synchronized_where_keras_allows_it(original_and_copy):
    model, copy, _ = original_and_copy
    norms = batch_norms(copy)
    assert len(norms) == 2  # the nested Sequential's included
    # Keras accepts synchronized=True on TensorFlow only.
    assert all(n.synchronized == (BACKEND == "tensorflow") for n in norms)
    assert not any(n.synchronized for n in batch_norms(model))  # untouched


def test_sequential_stays_sequential():
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.BatchNormalization(), keras.layers.Dense(2)]
    )
    copy = synchronize_batch_norm(model)
    assert isinstance(copy, keras.Sequential)
    assert len(batch_norms(copy)) == 1


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.norm = keras.layers.BatchNormalization()

    def call(self, x):
        return self.norm(x)


def test_subclassed_model_is_refused():
    with pytest.raises(TypeError, match="Functional or Sequential"):
        synchronize_batch_norm(Subclassed())


def test_a_layer_is_refused():
    with pytest.raises(TypeError, match="`model` must be"):
        synchronize_batch_norm(keras.layers.BatchNormalization())


def test_heads_are_rebuilt_with_synchronized_batch_norm(rng):
    head = ProjectionHead(hidden_dims=(4,), output_dim=2, output_batch_norm=True)
    model = keras.Sequential([keras.Input((4,)), head])
    randomize(model, rng)
    copy = synchronize_batch_norm(model)
    copied_head = copy.layers[-1]
    assert isinstance(copied_head, ProjectionHead) and copied_head is not head
    assert copied_head.synchronized_batch_norm and not head.synchronized_batch_norm
    assert all(n.synchronized == (BACKEND == "tensorflow") for n in batch_norms(copy))
    x = rng.normal(size=(6, 4)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(copy(x)), to_numpy(model(x)), rtol=1e-5, atol=1e-5
    )


class NormInside(keras.layers.Layer):
    """A custom layer holding a batch norm: nothing generic can rebuild it."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.norm = keras.layers.BatchNormalization()

    def call(self, x, training=None):
        return self.norm(x, training=training)


def test_batch_norm_inside_another_custom_layer_is_refused():
    model = keras.Sequential([keras.Input((4,)), NormInside()])
    with pytest.raises(TypeError, match="custom layer"):
        synchronize_batch_norm(model)


# ------------------------------------------------------------- 4 virtual devices


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    path = tmp_path_factory.mktemp("sync_bn") / "runs.npz"
    return run_on_four_devices("tests.distribute.sync_bn_run", path, timeout=600)


#: Compared variables of each 4-device case: gradients of the trainable ones
#: (GradientRecorder) and the batch-norm moving statistics.
VARIABLES = {
    "plain": 7,  # conv kernel, 4 BN variables, head kernel and bias
    "synchronized": 7,
    "synchronized_head": 9,  # conv kernel, bias; head: 2 kernels, bias, 4 BN
}


def largest_error(runs, case):
    """Max relative difference single vs 4 devices over gradients and BN state."""
    errors = {}
    for variable, single, multi in single_and_multi(runs, case):
        if variable == "devices":
            assert_four_devices_used(single, multi)
        elif variable != "logged_loss":
            scale = max(float(np.max(np.abs(single))), 1e-6)
            errors[variable] = float(np.max(np.abs(single - multi))) / scale
    assert len(errors) == VARIABLES[case], errors
    return max(errors.values()), errors


@needs_devices
@pytest.mark.parametrize("case", ["synchronized", "synchronized_head"])
def test_synchronized_batch_norm_equals_one_device(runs, case):
    error, errors = largest_error(runs, case)
    assert error <= 1e-5, errors


@needs_devices
def test_plain_batch_norm_on_four_devices(runs):
    error, errors = largest_error(runs, "plain")
    if BACKEND == "tensorflow":
        # Each replica normalises with its own rows' statistics: another step.
        assert error > 1e-2, errors
    else:
        # JAX DataParallel: the step sees the global batch; statistics are global.
        assert error <= 1e-5, errors
