"""Gradient caching: the loss and gradients of the full batch, chunk by chunk.

References are independent of the cached step: the plain step (one autodiff pass
over the whole batch) on the same weights and random state, either of the model
itself (deterministic encoders) or of a model whose forward pass runs chunk by chunk
(random augmentation, dropout, batch norm: the same draws and per-chunk statistics
the cached step must replay). Gradients are read out exactly by an optimizer that
sets each variable to its gradient.
"""

import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_contrastive.layers import SimCLRAugmenter
from keras_contrastive.models import BYOL, ChunkSize, GradientCache, SimCLR

ROWS, CHUNK, SIZE = 16, 4, 8
#: Relative error (vector norm, per variable) allowed between cached and reference.
RTOL = 1e-5


class GradientProbe(keras.optimizers.Optimizer):
    """Sets every trainable variable to its gradient: one step reads them out."""

    def __init__(self):
        super().__init__(learning_rate=1.0)

    def update_step(self, gradient, variable, learning_rate):
        self.assign(variable, gradient)


class ChunkedSimCLR(SimCLR):
    """Reference: SimCLR whose forward pass runs row chunks one after the other.

    Its plain step differentiates the full-batch loss of exactly the computation
    gradient caching performs (same random draws, same per-chunk batch norm).
    """

    def forward_pass(self, x, training=False):
        parts = [
            super(ChunkedSimCLR, self).forward_pass(x[i : i + CHUNK], training)
            for i in range(0, x.shape[0], CHUNK)
        ]
        return {k: ops.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}


@keras.saving.register_keras_serializable(package="test_gradient_cache")
class Identity(keras.layers.Layer):
    """A deterministic augmenter: both views are the image."""

    def call(self, x, training=True):
        return ops.cast(x, self.compute_dtype)


def encoder(dropout=0.0, batch_norm=False, regularizer=None):
    layers = [
        keras.Input((SIZE, SIZE, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(6, 3, activation="relu"),
    ]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    layers += [
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.LayerNormalization(),
        keras.layers.Dropout(dropout, seed=3),
        keras.layers.Dense(8, kernel_regularizer=regularizer),
    ]
    return keras.Sequential(layers)


def head():
    return keras.Sequential(
        [keras.layers.Dense(8, activation="relu"), keras.layers.Dense(4)]
    )


def make(cls=SimCLR, random=True, **kwargs):
    augmenter = SimCLRAugmenter(SIZE, blur=False, seed=7) if random else Identity()
    model_kwargs = {
        k: kwargs.pop(k) for k in ("gradient_cache", "temperature") if k in kwargs
    }
    return cls(encoder(**kwargs), head(), augmenter, **model_kwargs)


def images(rows=ROWS, seed=0):
    """Noisy images of distinct colours (pooled features must tell them apart)."""
    rng = np.random.default_rng(seed)
    colours = rng.uniform(0, 255, (rows, 1, 1, 3))
    noise = rng.normal(0, 20, (rows, SIZE, SIZE, 3))
    return np.clip(colours + noise, 0, 255).astype("float32")


def copy_state(source, target, x):
    """Same weights, batch-norm statistics and seed-generator states."""
    source.build_for(x)
    target.build_for(x)
    assert len(source.variables) == len(target.variables)
    for s, t in zip(source.variables, target.variables):
        t.assign(ops.convert_to_numpy(s))  # a copy: JAX donates buffers


def probe_step(model, x, optimizer=GradientProbe):
    """(loss, gradients, non-trainable values after the step) of one train step."""
    model.compile(optimizer=optimizer())
    logs = model.train_on_batch(x, return_dict=True)
    gradients = [ops.convert_to_numpy(v) for v in model.trainable_variables]
    state = [ops.convert_to_numpy(v) for v in model.non_trainable_variables]
    return float(logs["loss"]), gradients, state


def assert_relative(actual, expected, rtol=RTOL, floor=0.0):
    """Per-variable relative error; `floor` bounds the scale from below for
    gradients that are zero in theory (round-off on both sides)."""
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        scale = max(np.linalg.norm(e), floor)
        assert scale > 0, "a reference gradient is zero: the test could not fail"
        error = np.linalg.norm(np.asarray(a, "float64") - e) / scale
        assert error < rtol, f"relative error {error:.2e} for shape {e.shape}"


def compare(reference, cached, x, optimizer=GradientProbe):
    copy_state(reference, cached, x)
    return probe_step(reference, x, optimizer), probe_step(cached, x, optimizer)


@pytest.mark.parametrize("chunk_size", [CHUNK, 5])
def test_equals_the_full_batch_step(chunk_size):
    """Deterministic encoder (layer norm, weight regularizer): same loss, gradients.

    Chunk 5 leaves a last chunk of one row.
    """
    x = images()
    regularizer = keras.regularizers.L2(1e-2)
    reference = make(random=False, regularizer=regularizer)
    cached = make(random=False, regularizer=regularizer, gradient_cache=chunk_size)
    (loss, grads, _), (cached_loss, cached_grads, _) = compare(reference, cached, x)
    np.testing.assert_allclose(cached_loss, loss, rtol=RTOL)
    assert_relative(cached_grads, grads)


def test_replays_augmentation_and_dropout():
    """Random views and dropout: the second pass sees the first pass's draws.

    Without the replay, pass 2 would draw new views and masks and the gradients
    would not be those of the loss that was computed.
    """
    x = images()
    reference = make(ChunkedSimCLR, dropout=0.5)
    cached = make(dropout=0.5, gradient_cache=CHUNK)
    (loss, grads, state), (cached_loss, cached_grads, cached_state) = compare(
        reference, cached, x
    )
    np.testing.assert_allclose(cached_loss, loss, rtol=RTOL)
    assert_relative(cached_grads, grads)
    # The seed generators end where one pass over the chunks leaves them.
    for s, c in zip(state, cached_state):
        np.testing.assert_array_equal(c, s)


def test_batch_norm_is_per_chunk_and_updated_once():
    """With batch norm the result is per-chunk batch norm; statistics move once."""
    x = images()
    reference = make(ChunkedSimCLR, batch_norm=True)
    cached = make(batch_norm=True, gradient_cache=CHUNK)
    copy_state(reference, cached, x)
    before = [ops.convert_to_numpy(v) for v in reference.non_trainable_variables]
    (loss, grads, state), (cached_loss, cached_grads, cached_state) = compare(
        reference, cached, x
    )
    np.testing.assert_allclose(cached_loss, loss, rtol=RTOL)
    # Normalising by 4-row statistics amplifies float rounding: 1e-4, not 1e-5.
    assert_relative(cached_grads, grads, rtol=1e-4)
    moved = [not np.array_equal(b, s) for b, s in zip(before, state)]
    assert sum(moved) >= 3  # moving mean, variance and the seed generator(s)
    for s, c in zip(state, cached_state):
        np.testing.assert_allclose(c, s, rtol=1e-5, atol=1e-6)


def test_fit_trains_like_the_plain_step():
    """`fit` with uneven batches (16 then 4 rows; chunks 5, 5, 5, 1 then 4)."""
    x = images(20, seed=1)
    histories = []
    for gradient_cache in (None, ChunkSize(5)):
        keras.utils.set_random_seed(0)
        model = make(random=False, gradient_cache=gradient_cache, temperature=0.2)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        history = model.fit(x, batch_size=16, epochs=8, verbose=0, shuffle=False)
        histories.append(history.history)
    plain, cached = histories
    losses = cached["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0]
    for name in ("loss", "contrastive_accuracy", "embedding_std"):
        np.testing.assert_allclose(cached[name], plain[name], rtol=1e-3, atol=1e-5)


def test_mixed_precision_loss_scaling():
    """float16 compute with loss scaling: gradients unscaled like the plain step's."""
    keras.config.set_dtype_policy("mixed_float16")  # conftest resets it
    x = images()
    reference = make(random=False)
    cached = make(random=False, gradient_cache=CHUNK)

    # A scale small enough for float16 not to overflow (the step would be skipped).
    def optimizer():
        return keras.optimizers.LossScaleOptimizer(GradientProbe(), initial_scale=64)

    (loss, grads, _), (cached_loss, cached_grads, _) = compare(
        reference, cached, x, optimizer
    )
    np.testing.assert_allclose(cached_loss, loss, rtol=1e-2)
    # float16 activations: rounding, not a 2**15 loss-scale factor, separates them.
    assert_relative(cached_grads, grads, rtol=3e-2)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="XLA on TF only")
def test_tensorflow_turns_xla_off():
    model = make(random=False, gradient_cache=CHUNK)
    model.compile(optimizer="sgd", jit_compile=True)
    assert not model.jit_compile
    history = model.fit(images(), batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_config_round_trip(tmp_path):
    cache = GradientCache(chunk_size=6)
    assert ChunkSize is GradientCache
    assert GradientCache.from_config(cache.get_config()) == cache
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(cache)
    )
    assert restored == cache

    model = make(random=False, gradient_cache=6)
    assert model.gradient_cache == cache
    assert SimCLR.from_config(model.get_config()).gradient_cache == cache
    assert "gradient_cache" not in make(random=False).get_config()

    model = SimCLR(encoder(), head(), gradient_cache=cache)
    model.build_for(images(2))
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    assert keras.saving.load_model(path).gradient_cache == cache


@pytest.mark.parametrize(
    "chunk_size, error",
    [
        (0, ValueError),
        (-3, ValueError),
        (2.5, TypeError),
        (True, TypeError),
        ("4", TypeError),
        (None, TypeError),
    ],
)
def test_bad_chunk_size(chunk_size, error):
    with pytest.raises(error, match="`chunk_size` must be an int >= 1. Received"):
        GradientCache(chunk_size)


@pytest.mark.parametrize(
    "value, error", [(0, ValueError), (-1, ValueError), ("8", TypeError)]
)
def test_bad_gradient_cache(value, error):
    with pytest.raises(error, match="gradient_cache"):
        make(random=False, gradient_cache=value)


def test_unsupported_method_raises():
    assert not BYOL.supports_gradient_cache and SimCLR.supports_gradient_cache
    with pytest.raises(ValueError, match="gradient_cache"):
        BYOL(encoder(), gradient_cache=4)


def test_barlow_twins_batch_level_loss_equals_the_full_batch_step():
    # The cross-correlation couples every row of the batch: only the outputs are
    # chunked, the loss (and its gradient w.r.t. them) is the full batch's.
    from keras_contrastive.models import BarlowTwins

    x = images()

    reference = BarlowTwins(encoder(), head(), Identity())
    cached = BarlowTwins(encoder(), head(), Identity(), gradient_cache=CHUNK)
    (loss, grads, _), (cached_loss, cached_grads, _) = compare(reference, cached, x)
    np.testing.assert_allclose(cached_loss, loss, rtol=RTOL)
    # Each projection dimension is standardised over the batch, so biases feeding
    # it linearly have a zero gradient in theory: round-off (~1e-9) on both sides.
    largest = max(np.linalg.norm(g) for g in grads)
    assert largest > 1e-2
    # Standardising divides by batch stds of order 1e-2 here, which amplifies
    # float32 round-off (measured up to 9e-5; a wrong gradient is off by O(1)).
    assert_relative(cached_grads, grads, rtol=5e-4, floor=1e-3 * largest)
