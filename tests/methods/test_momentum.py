"""Momentum copies, the momentum schedule and the FIFO queue, against NumPy."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_contrastive.callbacks.momentum_schedule import MomentumSchedule
from keras_contrastive.layers.state import FeatureQueue
from keras_contrastive.models.contrastive_model import ContrastiveModel
from keras_contrastive.models.momentum import (
    MomentumPairs,
    MomentumState,
    momentum_copy,
    scheduled_momentum,
)
from tests.methods.helpers import Linear, to_numpy, unit


class ToyMomentumMethod(ContrastiveModel):
    """loss = mean_i (x_i W) . (x_i W + c); a momentum copy of the encoder."""

    def __init__(self, momentum=0.9, **kwargs):
        super().__init__(**kwargs)
        self.encoder = Linear(3)
        self.momentum_state = MomentumState(momentum)
        self.target = None
        self.pairs = []

    def build(self, input_shape):
        self.encoder.build(input_shape)
        self.target = momentum_copy(self.encoder)
        if not self.target.built:  # deserialized copies may come built
            self.target.build(input_shape)
        self.pairs = [MomentumPairs(self.encoder, self.target)]
        self.built = True

    def set_momentum_schedule(self, start, end, total_steps, schedule="cosine"):
        self.momentum_state.set_schedule(start, end, total_steps, schedule)

    def forward_pass(self, x, training=False):
        self.momentum_state.sync_once(self.pairs)
        z = self.encoder(x)
        return {"z_a": z, "z_b": z + 0.5}

    def compute_contrastive_loss(self, outputs):
        return ops.mean(ops.sum(outputs["z_a"] * outputs["z_b"], axis=-1))

    def post_step(self, outputs):
        momentum = self.momentum_state.current()
        for pairs in self.pairs:
            pairs.update(momentum)
        self.momentum_state.advance()


def numpy_momentum(k, total, start, end, kind):
    p = min(k / total, 1.0)
    if kind == "cosine":
        return end - (end - start) * (math.cos(math.pi * p) + 1) / 2
    if kind == "linear":
        return start + (end - start) * p
    return start


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_scheduled_momentum_matches_formula(kind):
    cosine = 1.0 if kind == "cosine" else 0.0
    for k in (0, 1, 5, 9, 10, 25):
        value = float(to_numpy(scheduled_momentum(k, 10, 0.99, 1.0, cosine)))
        assert value == pytest.approx(numpy_momentum(k, 10, 0.99, 1.0, kind), abs=1e-6)
    # BYOL's form for end = 1: 1 - (1 - m0)(cos(pi k / K) + 1) / 2.
    byol = 1 - (1 - 0.996) * (math.cos(math.pi * 3 / 8) + 1) / 2
    assert float(to_numpy(scheduled_momentum(3, 8, 0.996, 1.0, 1.0))) == (
        pytest.approx(byol, abs=1e-6)
    )
    # No schedule: the start value.
    assert float(to_numpy(scheduled_momentum(7, 0, 0.9, 1.0, 1.0))) == (
        pytest.approx(0.9)
    )


def test_momentum_copy_after_k_steps_matches_closed_form(rng):
    """SGD on the online weights and a cosine-scheduled EMA, simulated in NumPy."""
    x = rng.normal(size=(12, 4)).astype("float32")
    model = ToyMomentumMethod(momentum=0.5)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05))
    model.build(x.shape)
    w = to_numpy(model.encoder.kernel).astype(np.float64)
    assert not np.allclose(to_numpy(model.target.kernel), w)  # synced in the step
    schedule = MomentumSchedule(start=0.9, end=1.0, schedule="cosine")
    model.fit(x, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[schedule])
    copy = w.copy()
    step = 0
    for _ in range(2):
        for start in range(0, 12, 4):
            xb = x[start : start + 4].astype(np.float64)
            z = xb @ w
            w = w - 0.05 * xb.T @ (2 * z + 0.5) / 4
            m = numpy_momentum(step, 6, 0.9, 1.0, "cosine")
            copy = m * copy + (1 - m) * w
            step += 1
    np.testing.assert_allclose(to_numpy(model.encoder.kernel), w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        to_numpy(model.target.kernel), copy, rtol=1e-4, atol=1e-6
    )
    assert int(to_numpy(model.momentum_state.step)) == 6
    assert float(to_numpy(model.momentum_state.current())) == pytest.approx(1.0)
    # The copy is invisible to the optimizer.
    assert all(v is not model.target.kernel for v in model.trainable_variables)


def test_momentum_schedule_arguments_and_config():
    schedule = MomentumSchedule(0.99, 1.0, "linear", total_steps=100)
    restored = MomentumSchedule.from_config(schedule.get_config())
    assert restored.get_config() == schedule.get_config()
    assert restored.schedule_length() == 100
    with pytest.raises(ValueError, match="schedule"):
        MomentumSchedule(schedule="exponential")
    with pytest.raises(ValueError, match="start"):
        MomentumSchedule(start=1.5)
    with pytest.raises(ValueError, match="total_steps"):
        MomentumSchedule(total_steps=0)
    with pytest.raises(ValueError, match="must be an int >= 1"):
        MomentumState(0.9).set_schedule(0.9, 1.0, 0)


def test_momentum_schedule_rejects_models_without_momentum(rng):
    from keras_contrastive.models.simclr import SimCLR
    from tests.methods.helpers import tiny_encoder

    model = SimCLR(tiny_encoder())
    model.compile(optimizer="sgd")
    with pytest.raises(TypeError, match="set_momentum_schedule"):
        model.fit(
            rng.integers(0, 255, (8, 8, 8, 3), dtype=np.uint8),
            batch_size=4,
            verbose=0,
            callbacks=[MomentumSchedule()],
        )


def numpy_ring(size, dim, batches, initial):
    ring, pointer = initial.astype(np.float64).copy(), 0
    for batch in batches:
        for key in batch:
            ring[pointer] = unit(key)
            pointer = (pointer + 1) % size
    return ring, pointer


def test_queue_fifo_wraps_and_keeps_the_last_keys(rng):
    queue = FeatureQueue(size=7, dim=3)
    initial = to_numpy(queue.keys)
    np.testing.assert_allclose(np.linalg.norm(initial, axis=1), 1.0, rtol=1e-5)
    # 3 + 3 + 2 wraps past the end; 2 is a partial batch; 9 > size keeps the last 7.
    batches = [rng.normal(size=(n, 3)) for n in (3, 3, 2, 3, 9)]
    for i in range(len(batches)):
        queue.enqueue(batches[i].astype("float32"))
        expected, pointer = numpy_ring(7, 3, batches[: i + 1], initial)
        np.testing.assert_allclose(to_numpy(queue.keys), expected, rtol=1e-5, atol=1e-6)
        assert int(to_numpy(queue.pointer)) == pointer
    # Its contents are the last 7 keys seen, oldest at the pointer.
    last = unit(np.concatenate(batches))[-7:]
    order = (int(to_numpy(queue.pointer)) + np.arange(7)) % 7
    np.testing.assert_allclose(to_numpy(queue.keys)[order], last, rtol=1e-5, atol=1e-6)


def test_queue_rejects_bad_sizes_and_wrong_dims():
    with pytest.raises(ValueError, match="size"):
        FeatureQueue(size=0, dim=3)
    queue = FeatureQueue(size=4, dim=3)
    with pytest.raises(ValueError, match=r"dimension 3.*keys.shape=\(2, 5\)"):
        queue.enqueue(np.ones((2, 5), "float32"))
