"""BYOL and SimSiam: loss against NumPy, target update, options and errors."""

import keras
import numpy as np
import pytest

from keras_contrastive.callbacks.momentum_schedule import MomentumSchedule
from keras_contrastive.layers import PredictionHead, ProjectionHead, SimCLRAugmenter
from keras_contrastive.models import BYOL, SimSiam
from tests.methods.helpers import (
    linear_encoder,
    linear_head,
    numpy_byol,
    numpy_linear,
    tiny_encoder,
    to_numpy,
)


def linear_model(cls, **kwargs):
    """2x2x1 images, linear networks, identity views: everything in NumPy."""
    return cls(
        linear_encoder(),
        projection_head=linear_head(3),
        prediction_head=PredictionHead(hidden_dims=(), output_dim=3, batch_norm=False),
        augmenter=keras.layers.Identity(),
        **kwargs,
    )


def dense(head):
    return head.blocks[-1]


@pytest.mark.parametrize("cls", [BYOL, SimSiam])
def test_loss_regresses_the_other_views_target(cls, rng):
    x = rng.normal(size=(6, 2, 2, 1)).astype("float32")
    model = linear_model(cls)
    model.compile(optimizer="sgd")
    model.build(x.shape)
    if cls is BYOL:
        # A target that differs from the online network (as after training).
        for variable in model.target_encoder.weights + model.target_head.weights:
            variable.assign(rng.normal(size=variable.shape))
        model.momentum_state.synced.assign(1)
        target_layers = (model.target_encoder.layers[-1], dense(model.target_head))
    else:
        target_layers = (model.encoder.layers[-1], dense(model.projection_head))
    logs = model.evaluate(x, batch_size=6, verbose=0, return_dict=True)
    online = numpy_linear(
        x,
        model.encoder.layers[-1],
        dense(model.projection_head),
        dense(model.prediction_head),
    )
    target = numpy_linear(x, *target_layers)
    # Identical views: both directions are l(p_i, t_i); the loss is their mean.
    np.testing.assert_allclose(logs["loss"], numpy_byol(online, target), rtol=1e-4)


def test_target_update_after_k_steps_matches_closed_form(rng):
    """Frozen online side: theta_t = P theta_0 + (1 - P) theta with P = prod(m_j)."""
    x = rng.normal(size=(8, 2, 2, 1)).astype("float32")
    model = linear_model(BYOL, momentum=0.5)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
    model.fit(x, batch_size=4, epochs=1, shuffle=False, verbose=0)  # 2 steps
    target_vars = model.target_encoder.weights + model.target_head.weights
    online_vars = model.encoder.weights + model.projection_head.weights
    starts = [rng.normal(size=v.shape) for v in target_vars]
    for variable, value in zip(target_vars, starts):
        variable.assign(value)
    # A linear schedule 0.6 -> 1.0 over K = 8 steps; steps 2..5 run now.
    schedule = MomentumSchedule(0.6, 1.0, schedule="linear", total_steps=8)
    model.fit(x, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[schedule])
    keep = np.prod([0.6 + 0.4 * k / 8 for k in range(2, 6)])
    for target, online, start in zip(target_vars, online_vars, starts):
        expected = keep * start + (1 - keep) * to_numpy(online)
        np.testing.assert_allclose(to_numpy(target), expected, rtol=1e-5, atol=1e-6)
    assert int(to_numpy(model.momentum_state.step)) == 6


def test_defaults_and_config_round_trip(rng):
    model = BYOL(tiny_encoder(filters=4))
    model.build((None, 8, 8, 3))
    assert isinstance(model.augmenter, SimCLRAugmenter)
    assert model.projection_head.output_dim == 128
    assert model.prediction_head.output_dim == 128
    assert model.momentum == 0.996
    assert not any(v.trainable for v in model.target_encoder.weights)
    simsiam = SimSiam(
        tiny_encoder(), projection_head=ProjectionHead(hidden_dims=(8,), output_dim=4)
    )
    simsiam.build((None, 8, 8, 3))
    assert simsiam.prediction_head.hidden_dims == (1,)  # bottleneck p / 4
    assert not hasattr(simsiam, "target_encoder")
    restored = SimSiam.from_config(simsiam.get_config())
    assert restored.prediction_head.output_dim == 4
    assert BYOL.from_config(model.get_config()).momentum == 0.996


def test_bad_arguments_raise_clear_errors(rng):
    with pytest.raises(ValueError, match="momentum"):
        BYOL(tiny_encoder(), momentum=-0.1)
    with pytest.raises(TypeError, match="encoder"):
        SimSiam("resnet")
    model = BYOL(
        tiny_encoder(),
        projection_head=ProjectionHead(hidden_dims=(8,), output_dim=4),
        prediction_head=PredictionHead(hidden_dims=(8,), output_dim=5),
    )
    with pytest.raises(ValueError, match="output size equals the projection's"):
        model.build((None, 8, 8, 3))
    flat = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)])
    with pytest.raises(ValueError, match="2-D"):
        BYOL(flat).build((None, 8, 8, 3))
