"""CPC (Oord et al. 2018): the loss against a NumPy reimplementation of eq. 3-4,
the argument checks, and a short fit that learns to predict the future.

The harness (tests/methods/harness.py, entry "cpc") covers fit on every input
kind, `.keras` save/load, resume, mixed precision and the 4-device equality.
"""

import textwrap

import keras
import numpy as np
import pytest
from keras import ops

from keras_contrastive.models import CPC

B, T, F, D, H, K = 3, 7, 2, 4, 5, 3


def make_model(prediction_steps=K, steps=T):
    encoder = keras.Sequential(
        [keras.Input((steps, F)), keras.layers.Dense(D, activation="tanh")]
    )
    model = CPC(encoder, keras.layers.GRU(H, return_sequences=True), prediction_steps)
    model.build_for(np.zeros((2, steps, F), "float32"))
    return model


def reference_loss_and_accuracy(z, c, w, prediction_steps):
    """Eq. 3 and 4 written out with loops, in float64.

    z: (B, T, d) encodings, c: (B, T, h) contexts, w: (h, K d) with the k-th block
    of d columns the transpose of W_k. Candidates: every z[b', s] of the batch.
    """
    z, c, w = (np.asarray(a, np.float64) for a in (z, c, w))
    batch, steps, dim = z.shape
    candidates = z.reshape(-1, dim)
    losses, accuracies = [], []
    for k in range(1, prediction_steps + 1):
        w_k = w[:, (k - 1) * dim : k * dim]
        terms, hits = [], []
        for b in range(batch):
            for t in range(steps - k):
                prediction = c[b, t] @ w_k  # W_k c_t
                scores = candidates @ prediction  # log f_k(x_j, c_t)
                positive = b * steps + t + k
                log_sum = np.log(np.sum(np.exp(scores - scores.max()))) + scores.max()
                terms.append(log_sum - scores[positive])
                hits.append(np.argmax(scores) == positive)
        losses.append(np.mean(terms))
        accuracies.append(np.mean(hits))
    return np.mean(losses), np.mean(accuracies)


def test_loss_and_accuracy_match_a_numpy_reference():
    keras.utils.set_random_seed(0)
    model = make_model()
    x = np.random.default_rng(0).normal(size=(B, T, F)).astype("float32")
    # Larger weights than Glorot's make the scores spread (and the accuracy
    # informative).
    kernel = model.predictor.kernel
    kernel.assign(3.0 * ops.convert_to_numpy(kernel))
    outputs = model.forward_pass(x)
    z = ops.convert_to_numpy(model.encoder(x))
    c = ops.convert_to_numpy(model.context_network(model.encoder(x)))
    w = ops.convert_to_numpy(model.predictor.kernel)
    loss, accuracy = reference_loss_and_accuracy(z, c, w, K)
    got = float(ops.convert_to_numpy(model.compute_contrastive_loss(outputs)))
    np.testing.assert_allclose(got, loss, rtol=1e-5)
    stats = model.compute_contrastive_stats(outputs)
    np.testing.assert_allclose(
        float(ops.convert_to_numpy(stats["contrastive_accuracy"])), accuracy
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(model.context(x)), c, rtol=1e-5, atol=1e-6
    )
    # Guess level: every candidate equally likely, N = B T candidates.
    assert abs(loss - np.log(B * T)) < 3.0


def test_context_is_causal():
    # Changing the last step of the input changes no context before it: the loss
    # terms of c_t never see z_{>t}.
    keras.utils.set_random_seed(1)
    model = make_model()
    x = np.random.default_rng(1).normal(size=(B, T, F)).astype("float32")
    changed = x.copy()
    changed[:, -1] += 5.0
    a = ops.convert_to_numpy(model.context(x))
    b = ops.convert_to_numpy(model.context(changed))
    np.testing.assert_allclose(a[:, :-1], b[:, :-1], rtol=1e-6)
    assert np.abs(a[:, -1] - b[:, -1]).max() > 1e-3


def sine_sequences(n, steps, rng):
    """Two-channel sinusoids of random frequency and phase: the future of each
    sequence follows from its past."""
    t = np.arange(steps)[None, :]
    frequency = rng.uniform(0.2, 1.2, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    angle = frequency * t + phase
    return np.stack([np.sin(angle), np.cos(angle)], axis=-1).astype("float32")


def test_a_short_fit_learns_to_predict_the_future():
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(2)
    x = sine_sequences(64, 12, rng)
    encoder = keras.Sequential(
        [keras.Input((12, 2)), keras.layers.Conv1D(16, 1, activation="tanh")]
    )
    model = CPC(encoder, keras.layers.GRU(16, return_sequences=True), 2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, batch_size=16, epochs=8, verbose=0).history
    # Chance: log(16 * 12) = 5.26 and accuracy 1/192.
    assert history["loss"][0] > 4.5
    assert history["loss"][-1] < history["loss"][0] - 1.0
    assert history["contrastive_accuracy"][-1] > 4 / 192


def test_bad_arguments_and_shapes_get_clear_errors():
    with pytest.raises(ValueError, match="`prediction_steps` must be an int >= 1"):
        CPC(keras.layers.Dense(2), prediction_steps=0)
    with pytest.raises(TypeError, match="`prediction_steps`"):
        CPC(keras.layers.Dense(2), prediction_steps=1.5)
    with pytest.raises(TypeError, match="`encoder` must be a Keras layer"):
        CPC("conv")
    with pytest.raises(TypeError, match="`context_network` must be a Keras layer"):
        CPC(keras.layers.Dense(2), context_network=3)
    x = np.zeros((4, T, F), "float32")
    pooled = keras.Sequential(
        [keras.Input((T, F)), keras.layers.GlobalAveragePooling1D()]
    )
    with pytest.raises(ValueError, match=r"`encoder` must be a network returning"):
        CPC(pooled).build_for(x)
    with pytest.raises(ValueError, match=r"`prediction_steps` must be smaller"):
        make_model(prediction_steps=T)
    last_only = keras.layers.GRU(3)  # no return_sequences
    dense = keras.Sequential([keras.Input((T, F)), keras.layers.Dense(D)])
    with pytest.raises(ValueError, match=r"`context_network` must be a layer"):
        CPC(dense, last_only).build_for(x)


def test_default_context_network_and_config_round_trip():
    encoder = keras.Sequential([keras.Input((T, F)), keras.layers.Dense(D)])
    model = CPC(encoder, prediction_steps=2)
    model.build_for(np.zeros((2, T, F), "float32"))
    assert isinstance(model.context_network, keras.layers.GRU)
    assert model.context_network.units == 256
    config = model.get_config()
    assert config["prediction_steps"] == 2
    clone = CPC.from_config(config)
    assert clone.prediction_steps == 2
    assert isinstance(clone.context_network, keras.layers.GRU)


def test_docstring_example_runs():
    source = CPC.__doc__.split("```python")[1].split("```")[0]
    namespace = {}
    exec(compile(textwrap.dedent(source), "CPC docstring", "exec"), namespace)
    assert namespace["z"].shape == (32, 12, 16)
