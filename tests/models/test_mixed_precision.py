"""Mixed precision: every method trains under `mixed_bfloat16` and `mixed_float16`.

Each method is built twice with identical weights and deterministic views (an
identity augmenter, seeded negative draws): once under the float32 policy (the
reference, run once per method and cached) and once under a mixed policy. Then:

- the networks of the mixed model run in the low-precision compute dtype, while
  its loss, its statistics and every variable (queue, memory bank, momentum
  copies, batch-norm statistics) stay float32;
- its inference-mode loss on a fixed batch equals the float32 loss;
- two `fit` steps with SGD give the float32 run's per-step losses, move the
  trainable weights as far as in float32 and leave the method's state (queue,
  bank, momentum copies) where the float32 run leaves it. Under `mixed_float16`
  `compile` wraps the optimizer in a `LossScaleOptimizer` (Keras'
  `auto_scale_loss`), and the fit runs one that scales the loss by 2^8: the
  steps match float32 only if the training step scales the loss and the
  optimizer unscales the gradients (either one missing would make the update
  2^8 times too small or too large), and both steps were applied (no overflow).

Tolerances: the networks compute in a dtype of unit roundoff u = 2^-8 ~ 3.9e-3
(bfloat16, 8 significant bits) or u = 2^-11 ~ 4.9e-4 (float16). The embeddings
then carry relative errors of a few u, and so do the losses and the state, smooth
functions of them: the tolerance is about 5 u (measured on the three backends: at
most 2.3 u). The weight change of two SGD steps goes through the backward pass of
batch norm, which subtracts batch means of nearly equal low-precision numbers and
so amplifies their rounding: measured up to 0.21 (55 u) for bfloat16 and 9e-3
(18 u) for float16 in relative norm; the tolerances, 0.4 and 5e-2, leave about
twice and five times that.
"""

import functools

import keras
import numpy as np
import pytest

from keras_contrastive.layers import PredictionHead, ProjectionHead
from keras_contrastive.models import BYOL, MemoryBankModel, MoCHi, MoCo, SimCLR, SimSiam
from tests.conftest import BACKEND
from tests.methods.helpers import random_images, tiny_encoder, to_numpy

BATCH = 8
NUM_IMAGES = 16  # two optimizer steps per epoch
SEED = 3
LEARNING_RATE = 0.1
INITIAL_SCALE = 2.0**8

#: policy -> (compute dtype, rtol of losses and state, rtol of the weight change).
POLICIES = {
    "mixed_bfloat16": ("bfloat16", 2e-2, 0.4),
    "mixed_float16": ("float16", 2.5e-3, 5e-2),
}

#: "mochi" is MoCo with hard negative mixing: it runs everything plain MoCo runs
#: (query and key networks, queue, momentum update) and the mixing on top.
METHODS = ("simclr", "mochi", "byol", "simsiam", "memory_bank")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Two CPU cores are shared by several jobs: one thread is faster for torch."""
    if BACKEND != "torch":
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_model(method):
    """A tiny model of `method` under the current global dtype policy."""
    encoder = tiny_encoder(filters=4)
    common = {
        "augmenter": keras.layers.Identity(),
        "projection_head": ProjectionHead(hidden_dims=(8,), output_dim=8),
    }
    if method == "simclr":
        return SimCLR(encoder, temperature=0.5, **common)
    if method == "mochi":
        return MoCo(
            encoder,
            queue_size=16,
            momentum=0.9,
            temperature=0.5,
            hard_negative_mixing=MoCHi(num_hard=4, num_synthetic=4, num_query_mixes=2),
            seed=SEED,
            **common,
        )
    if method in ("byol", "simsiam"):
        predictor = PredictionHead(hidden_dims=(16,), output_dim=8)
        if method == "byol":
            return BYOL(encoder, prediction_head=predictor, momentum=0.9, **common)
        return SimSiam(encoder, prediction_head=predictor, **common)
    return MemoryBankModel(
        encoder, NUM_IMAGES, num_negatives=8, temperature=0.5, seed=SEED, **common
    )


def make_data(method):
    images = random_images(np.random.default_rng(0), n=NUM_IMAGES)
    if method == "memory_bank":
        return (np.arange(NUM_IMAGES), images)
    return images


def first_batch(data):
    return keras.tree.map_structure(lambda a: a[:BATCH], data)


def images_of(x):
    return x[1] if isinstance(x, tuple) else x


def method_state(model):
    """The state a method keeps besides its trainable networks."""
    if isinstance(model, MoCo):
        return [model.queue.keys] + model.key_encoder.weights + model.key_head.weights
    if isinstance(model, BYOL):
        return model.target_encoder.weights + model.target_head.weights
    if isinstance(model, MemoryBankModel):
        return [model.memory_bank.entries]
    return []


def flat(variables):
    """The values of `variables`, concatenated into one float64 vector."""
    if not variables:
        return np.zeros((0,))
    return np.concatenate([to_numpy(v).astype(np.float64).ravel() for v in variables])


def relative_error(actual, expected):
    return np.linalg.norm(actual - expected) / max(np.linalg.norm(expected), 1e-30)


def standard_dtype(x):
    return keras.backend.standardize_dtype(x.dtype)


def check_float_state_is_float32(model):
    """No variable of `model` is stored in float16 or bfloat16."""
    low_precision = ("float16", "bfloat16")
    low = [v.path for v in model.variables if standard_dtype(v) in low_precision]
    assert not low, f"variables stored in low precision: {low}"
    assert any(standard_dtype(v) == "float32" for v in model.weights)


class _BatchLosses(keras.callbacks.Callback):
    """Records the running mean loss after each training batch."""

    def on_train_begin(self, logs=None):
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def train(model, data, policy="float32"):
    """Two SGD steps over `data` in order; returns the per-batch running losses."""
    optimizer = keras.optimizers.SGD(learning_rate=LEARNING_RATE)
    if policy == "mixed_float16":
        # Keras' default initial scale, 2^15, can overflow float16 in the first
        # backward pass of these tiny models (a BYOL prediction of small norm gets
        # a large gradient), and the optimizer then rightly skips the step and
        # halves the scale. A smaller start keeps both steps, so that they can be
        # compared with float32's.
        optimizer = keras.optimizers.LossScaleOptimizer(
            optimizer, initial_scale=INITIAL_SCALE
        )
    model.compile(optimizer=optimizer)
    recorder = _BatchLosses()
    model.fit(
        data, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[recorder]
    )
    return recorder.losses


@functools.cache
def float32_reference(method):
    """The float32 run of `method`: its initial weights and what the test compares."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(SEED)
    data = make_data(method)
    model = make_model(method)
    model.build_for(first_batch(data))
    initial = model.get_weights()
    loss, _, _ = model.contrastive_step(first_batch(data), training=False)
    model.set_weights(initial)  # undo the one-time momentum sync of that pass
    start, state_start = flat(model.trainable_weights), flat(method_state(model))
    losses = train(model, data)
    state = flat(method_state(model))
    return {
        "initial": initial,
        "loss": float(to_numpy(loss)),
        "batch_losses": losses,
        "weight_change": flat(model.trainable_weights) - start,
        "state": state,
        "state_change": state - state_start,
    }


def build_mixed(method, policy):
    """`method` under `policy`, with the float32 reference's initial weights."""
    reference = float32_reference(method)
    keras.config.set_dtype_policy(policy)
    data = make_data(method)
    model = make_model(method)
    model.build_for(first_batch(data))
    model.set_weights(reference["initial"])
    return model, data, reference


@pytest.mark.parametrize("policy", list(POLICIES))
@pytest.mark.parametrize("method", METHODS)
def test_mixed_precision_matches_float32(method, policy):
    compute_dtype, rtol, step_rtol = POLICIES[policy]
    model, data, reference = build_mixed(method, policy)
    x = first_batch(data)

    # The networks run in the compute dtype; loss, statistics and state in float32.
    assert standard_dtype(model.encoder(images_of(x))) == compute_dtype
    check_float_state_is_float32(model)
    loss, stats, _ = model.contrastive_step(x, training=False)
    assert standard_dtype(loss) == "float32"
    assert {standard_dtype(value) for value in stats.values()} == {"float32"}
    np.testing.assert_allclose(to_numpy(loss), reference["loss"], rtol=rtol)

    # `compile` adds loss scaling for float16 only (Keras' `auto_scale_loss`).
    model.compile(optimizer="sgd")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (
        policy == "mixed_float16"
    )

    # Two SGD steps from the same start (undo the momentum sync of the pass above).
    model.set_weights(reference["initial"])
    start, state_start = flat(model.trainable_weights), flat(method_state(model))
    losses = train(model, data, policy)
    assert np.all(np.isfinite(losses))
    np.testing.assert_allclose(losses, reference["batch_losses"], rtol=rtol)
    if policy == "mixed_float16":
        # Both steps had finite scaled gradients: both applied, the scale kept.
        assert int(to_numpy(model.optimizer.step_counter)) == NUM_IMAGES // BATCH
        assert float(to_numpy(model.optimizer.dynamic_scale)) == INITIAL_SCALE
    weight_change = flat(model.trainable_weights) - start
    assert np.linalg.norm(reference["weight_change"]) > 0
    assert relative_error(weight_change, reference["weight_change"]) < step_rtol

    # The state stays float32, where float32 leaves it, and it moved as far.
    check_float_state_is_float32(model)
    if reference["state"].size:
        state = flat(method_state(model))
        assert relative_error(state, reference["state"]) < rtol
        change = state - state_start
        assert relative_error(change, reference["state_change"]) < step_rtol
