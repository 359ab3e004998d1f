"""ProjectionHead / PredictionHead: structure, maths, serialisation, bf16."""

import keras
import numpy as np
import pytest

from keras_contrastive.layers import PredictionHead, ProjectionHead
from tests.layers._util import to_numpy


def test_structure_follows_the_arguments():
    # The blocks exist from construction on (no weights needed to inspect them).
    head = ProjectionHead(hidden_dims=(16, 8), output_dim=4)
    kinds = [type(block).__name__ for block in head.blocks]
    assert kinds == [
        "Dense",
        "BatchNormalization",
        "Activation",
        "Dense",
        "BatchNormalization",
        "Activation",
        "Dense",
    ]
    # A dense layer followed by batch norm has no bias; the output layer has one.
    assert [b.use_bias for b in head.blocks if isinstance(b, keras.layers.Dense)] == [
        False,
        False,
        True,
    ]
    no_bn = ProjectionHead(hidden_dims=(16,), output_dim=4, batch_norm=False)
    assert [type(b).__name__ for b in no_bn.blocks] == ["Dense", "Activation", "Dense"]
    assert no_bn.blocks[0].use_bias
    v2 = ProjectionHead(hidden_dims=(8,), output_dim=4, output_batch_norm=True)
    assert not v2.blocks[-2].use_bias and not v2.blocks[-1].center


def test_defaults():
    head = ProjectionHead()
    assert head.hidden_dims == (2048,) and head.output_dim == 128
    predictor = PredictionHead()
    assert predictor.hidden_dims == (512,) and predictor.output_dim == 128


def test_forward_matches_numpy(rng):
    head = ProjectionHead(hidden_dims=(8,), output_dim=4, activation="relu")
    x = rng.normal(size=(6, 5)).astype("float32")
    out = to_numpy(head(x, training=True))
    dense, bn, _, last = head.blocks
    w1 = to_numpy(dense.kernel)
    gamma, beta = to_numpy(bn.gamma), to_numpy(bn.beta)
    w2, b2 = to_numpy(last.kernel), to_numpy(last.bias)
    h = x @ w1
    h = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-5) * gamma + beta
    expected = np.maximum(h, 0) @ w2 + b2
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_linear_head_and_other_activation(rng):
    head = PredictionHead(hidden_dims=(), output_dim=4)
    x = rng.normal(size=(6, 5)).astype("float32")
    out = to_numpy(head(x))
    kernel, bias = (to_numpy(w) for w in (head.blocks[0].kernel, head.blocks[0].bias))
    np.testing.assert_allclose(out, x @ kernel + bias, rtol=1e-5, atol=1e-5)
    gelu = ProjectionHead(hidden_dims=8, output_dim=4, activation="gelu")
    assert to_numpy(gelu(x)).shape == (6, 4)


def test_synchronized_batch_norm_where_keras_has_it():
    head = ProjectionHead(
        hidden_dims=(8,),
        output_dim=4,
        output_batch_norm=True,
        synchronized_batch_norm=True,
    )
    norms = [b for b in head.blocks if isinstance(b, keras.layers.BatchNormalization)]
    assert len(norms) == 2
    # Keras accepts synchronized=True on TensorFlow only; JAX DataParallel already
    # normalises over the global batch and torch trains on one device.
    on_tf = keras.backend.backend() == "tensorflow"
    assert all(n.synchronized == on_tf for n in norms)
    assert not any(
        n.synchronized
        for n in ProjectionHead(hidden_dims=(8,)).blocks
        if isinstance(n, keras.layers.BatchNormalization)
    )


@pytest.mark.parametrize("cls", [ProjectionHead, PredictionHead])
def test_saving_round_trip(tmp_path, rng, cls):
    head = cls(
        hidden_dims=(8,),
        output_dim=4,
        output_batch_norm=True,
        synchronized_batch_norm=True,
        name="head",
    )
    model = keras.Sequential([keras.Input((5,)), head])
    x = rng.normal(size=(6, 5)).astype("float32")
    model(x, training=True)  # moves the batch-norm statistics
    path = tmp_path / "head.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        to_numpy(loaded.predict(x, verbose=0)),
        to_numpy(model.predict(x, verbose=0)),
        rtol=1e-5,
        atol=1e-6,
    )
    config = head.get_config()
    assert config["synchronized_batch_norm"] is True
    assert cls.from_config(config).get_config() == config


def test_mixed_bfloat16(rng):
    keras.config.set_dtype_policy("mixed_bfloat16")
    head = ProjectionHead(hidden_dims=(8,), output_dim=4)
    out = head(rng.normal(size=(6, 5)).astype("float32"), training=True)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert head.blocks[0].kernel.dtype == "float32"
    assert np.all(np.isfinite(to_numpy(keras.ops.cast(out, "float32"))))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden_dims": (8, 0)}, "`hidden_dims` must be a positive int or"),
        ({"output_dim": 0}, r"`output_dim` must be an int >= 1\. Received: output_dim"),
        ({"activation": "no_such_activation"}, "`activation` must be"),
        ({"batch_norm_momentum": 1.5}, "`batch_norm_momentum` must be"),
        ({"batch_norm_epsilon": 0.0}, "`batch_norm_epsilon` must be"),
        ({"kernel_initializer": "no_such_initializer"}, "`kernel_initializer`"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ProjectionHead(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        # A wrong type is a TypeError, as everywhere in the package.
        ({"hidden_dims": "8"}, "hidden_dims"),
        ({"output_dim": 2.5}, "output_dim"),
        ({"activation": 3}, "`activation` must be"),
        ({"synchronized_batch_norm": "yes"}, "`synchronized_batch_norm` must be True"),
    ],
)
def test_bad_argument_types(kwargs, message):
    with pytest.raises(TypeError, match=message):
        ProjectionHead(**kwargs)


def test_bad_input_rank():
    with pytest.raises(ValueError, match=r"`input_shape` must be \(batch, dim\)"):
        ProjectionHead(hidden_dims=(4,), output_dim=2)(np.zeros((3,), "float32"))
