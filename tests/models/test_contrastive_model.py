"""The shared training step, checked against a closed-form toy method."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_contrastive.models import ContrastiveModel
from tests.methods.helpers import Linear


class ToyMethod(ContrastiveModel):
    """loss = mean_i (x_i W) . (x_i W + c): gradient (1/n) sum_i x_i^T (2 x_i W + c)."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.encoder = Linear(units)
        self.offset = 0.5
        self.post_steps = None

    def build(self, input_shape):
        self.encoder.build(input_shape)
        self.post_steps = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="post_steps"
        )
        self.kernel_after_step = self.add_weight(
            shape=self.encoder.kernel.shape,
            initializer="zeros",
            trainable=False,
            name="kernel_after_step",
        )
        self.built = True

    def forward_pass(self, x, training=False):
        z = self.encoder(x)
        return {"z_a": z, "z_b": z + self.offset}

    def compute_contrastive_loss(self, outputs):
        return ops.mean(ops.sum(outputs["z_a"] * outputs["z_b"], axis=-1))

    def post_step(self, outputs):
        self.post_steps.assign(self.post_steps + 1.0)
        self.kernel_after_step.assign(self.encoder.kernel)


def _numpy_loss_and_grad(x, w, c):
    z = x @ w
    loss = np.mean(np.sum(z * (z + c), axis=-1))
    grad = x.T @ (2 * z + c) / len(x)
    return loss, grad


def _toy_with_sgd(x, learning_rate):
    """A built ToyMethod compiled with SGD, and its initial kernel in float64."""
    model = ToyMethod()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate))
    model.build(x.shape)
    return model, keras.ops.convert_to_numpy(model.encoder.kernel).astype("float64")


def _sgd_steps(x, w, batch_size, learning_rate, drop_last):
    """NumPy SGD over x's batches in order: (final weights, per-step losses)."""
    losses = []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size].astype("float64")
        if drop_last and len(batch) < batch_size:
            break
        loss, grad = _numpy_loss_and_grad(batch, w, 0.5)
        losses.append(loss)
        w = w - learning_rate * grad
    return w, losses


def test_one_sgd_step_matches_closed_form(rng):
    x = rng.normal(size=(8, 4)).astype("float32")
    model, w0 = _toy_with_sgd(x, 0.1)
    history = model.fit(x, batch_size=8, epochs=1, shuffle=False, verbose=0)
    loss0, grad0 = _numpy_loss_and_grad(x.astype("float64"), w0, 0.5)
    w1 = keras.ops.convert_to_numpy(model.encoder.kernel)
    np.testing.assert_allclose(w1, w0 - 0.1 * grad0, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(history.history["loss"][0], loss0, rtol=1e-4)
    # post_step ran once per step and saw the updated weights.
    assert float(keras.ops.convert_to_numpy(model.post_steps)) == 1.0
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.kernel_after_step), w1, rtol=1e-6
    )


def test_three_steps_and_metrics(rng):
    x = rng.normal(size=(12, 4)).astype("float32")
    model, w = _toy_with_sgd(x, 0.05)
    history = model.fit(x, batch_size=4, epochs=1, shuffle=False, verbose=0)
    w, losses = _sgd_steps(x, w, 4, 0.05, drop_last=True)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.encoder.kernel), w, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(history.history["loss"][0], np.mean(losses), rtol=1e-4)
    assert float(keras.ops.convert_to_numpy(model.post_steps)) == 3.0
    assert set(history.history) == {
        "loss",
        "contrastive_accuracy",
        "embedding_std",
        "skipped_steps",
    }
    assert history.history["skipped_steps"] == [0.0]


@pytest.mark.parametrize("drop_last", [None, True, False])
def test_the_partial_last_batch_is_dropped_unless_asked(rng, drop_last):
    # 14 rows in batches of 4: three full batches and one of 2, which PyTorch's
    # DataLoader(drop_last=True) leaves out and so does fit by default.
    x = rng.normal(size=(14, 4)).astype("float32")
    model, w = _toy_with_sgd(x, 0.05)
    history = model.fit(
        x, batch_size=4, epochs=1, shuffle=False, verbose=0, drop_last=drop_last
    )
    dropped = drop_last is not False
    w, losses = _sgd_steps(x, w, 4, 0.05, dropped)
    assert len(losses) == (3 if dropped else 4)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.encoder.kernel), w, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(history.history["loss"][0], np.mean(losses), rtol=1e-4)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == len(losses)
    assert float(keras.ops.convert_to_numpy(model.post_steps)) == len(losses)
    assert history.history["skipped_steps"] == [0.0]


def test_drop_last_changes_between_fits_and_spares_evaluation(rng):
    x = rng.normal(size=(10, 4)).astype("float32")
    model, w = _toy_with_sgd(x, 0.05)
    # The step is compiled with the full batch size: each fit re-reads it.
    model.fit(x, batch_size=4, shuffle=False, verbose=0, drop_last=False)
    model.fit(x, batch_size=4, shuffle=False, verbose=0)
    model.fit(x, batch_size=3, shuffle=False, verbose=0)
    w, first = _sgd_steps(x, w, 4, 0.05, False)
    w, second = _sgd_steps(x, w, 4, 0.05, True)
    w, third = _sgd_steps(x, w, 3, 0.05, True)
    assert (len(first), len(second), len(third)) == (3, 2, 3)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.encoder.kernel), w, rtol=1e-4, atol=1e-5
    )
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 8
    # Evaluation counts every batch, the partial one too.
    logs = model.evaluate(x, batch_size=4, verbose=0, return_dict=True)
    expected = [
        _numpy_loss_and_grad(x[s : s + 4].astype("float64"), w, 0.5)[0]
        for s in (0, 4, 8)
    ]
    np.testing.assert_allclose(logs["loss"], np.mean(expected), rtol=1e-4)


def test_drop_last_sees_the_split_and_small_data(rng):
    x = rng.normal(size=(20, 4)).astype("float32")
    model = ToyMethod()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05))
    # validation_split=0.2 trains on 16 rows: batches of 5 leave one of 1.
    model.fit(x, batch_size=5, validation_split=0.2, shuffle=False, verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 3
    # Fewer rows than the batch size: the one batch is the full batch.
    model.fit(x[:6], batch_size=8, verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 4


def test_drop_last_must_be_a_bool(rng):
    model = ToyMethod()
    model.compile(optimizer="sgd")
    x = rng.normal(size=(8, 4)).astype("float32")
    with pytest.raises(TypeError, match="`drop_last` must be"):
        model.fit(x, batch_size=4, verbose=0, drop_last="yes")


def test_evaluate_reports_loss_without_updating(rng):
    x = rng.normal(size=(6, 4)).astype("float32")
    model = ToyMethod()
    model.compile(optimizer="sgd")
    model.build(x.shape)
    w = keras.ops.convert_to_numpy(model.encoder.kernel).astype("float64")
    logs = model.evaluate(x, batch_size=6, verbose=0, return_dict=True)
    expected, _ = _numpy_loss_and_grad(x.astype("float64"), w, 0.5)
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.encoder.kernel), w)
    assert float(keras.ops.convert_to_numpy(model.post_steps)) == 0.0
    # Accuracy: row i of z_b = z_a + c; check against a NumPy retrieval.
    z = x @ w
    za = z / np.linalg.norm(z, axis=1, keepdims=True)
    zb = (z + 0.5) / np.linalg.norm(z + 0.5, axis=1, keepdims=True)
    expected_acc = np.mean(np.argmax(za @ zb.T, axis=1) == np.arange(6))
    np.testing.assert_allclose(logs["contrastive_accuracy"], expected_acc, atol=1e-6)
    expected_std = np.mean(np.std(za, axis=0))
    np.testing.assert_allclose(logs["embedding_std"], expected_std, rtol=1e-4)


def test_batch_of_one_is_rejected(rng):
    model = ToyMethod()
    model.compile(optimizer="sgd")
    x = rng.normal(size=(8, 4)).astype("float32")
    with pytest.raises(ValueError, match="at least 2"):
        model.fit(x, batch_size=1, verbose=0)
    with pytest.raises(ValueError, match="at least 2"):
        model.fit(x[:1], verbose=0)


def test_a_non_finite_step_applies_nothing(rng):
    # One inf in the first batch: its loss and gradients are not finite. The
    # step is skipped whole (no update, no post_step, even a LossScaleOptimizer's
    # scale is left alone: bad data is not a float16 overflow), logs a NaN loss
    # and counts in `skipped_steps`.
    x = rng.normal(size=(8, 4)).astype("float32")
    x[1, 2] = np.inf
    model = ToyMethod()
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(learning_rate=0.1), initial_scale=2.0**4
    )
    model.compile(optimizer=optimizer)
    model.build(x.shape)
    w0 = keras.ops.convert_to_numpy(model.encoder.kernel).astype("float64")
    history = model.fit(x, batch_size=4, epochs=1, shuffle=False, verbose=0)
    # Only the second batch was applied: one SGD step from w0, one post_step.
    _, grad = _numpy_loss_and_grad(x[4:].astype("float64"), w0, 0.5)
    w1 = keras.ops.convert_to_numpy(model.encoder.kernel)
    np.testing.assert_allclose(w1, w0 - 0.1 * grad, rtol=1e-4, atol=1e-5)
    assert float(keras.ops.convert_to_numpy(optimizer.dynamic_scale)) == 2.0**4
    assert float(keras.ops.convert_to_numpy(model.post_steps)) == 1.0
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.kernel_after_step), w1, rtol=1e-6
    )
    assert history.history["skipped_steps"] == [1.0]
    assert np.isnan(history.history["loss"][0])


def test_post_step_skipped_with_a_float16_overflow_step(rng):
    # A finite loss whose float16 gradients overflow: the LossScaleOptimizer
    # skips the update and halves its scale; post_step must not run (a queue or
    # bank would keep that step's outputs); it is not a bad-data skip.
    keras.config.set_dtype_policy("mixed_float16")
    x = rng.normal(size=(8, 4)).astype("float32")
    model = ToyMethod()
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(learning_rate=0.1), initial_scale=2.0**30
    )
    model.compile(optimizer=optimizer)
    model.build(x.shape)
    w0 = keras.ops.convert_to_numpy(model.encoder.kernel)
    history = model.fit(x, batch_size=4, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.encoder.kernel), w0)
    assert float(keras.ops.convert_to_numpy(optimizer.dynamic_scale)) == 2.0**28
    assert float(keras.ops.convert_to_numpy(model.post_steps)) == 0.0
    assert history.history["skipped_steps"] == [0.0]
    assert np.isfinite(history.history["loss"][0])
