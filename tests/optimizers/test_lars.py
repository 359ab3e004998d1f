"""LARS against hand-written NumPy updates, in fit, serialisation and bad arguments."""

import copy

import keras
import numpy as np
import pytest

from keras_contrastive.optimizers import LARS, WarmupCosineDecay


def numpy_lars(w, grads, lr, momentum, weight_decay, eta, nesterov, excluded):
    """Reference LARS (SimCLR's classic momentum) over a sequence of gradients."""
    w = np.array(w, dtype=np.float64)
    v = np.zeros_like(w)
    for g in grads:
        g = np.array(g, dtype=np.float64)
        if not excluded:
            g = g + weight_decay * w
            w_norm = np.linalg.norm(w)
            g_norm = np.linalg.norm(g)
            trust = eta * w_norm / g_norm if (w_norm > 0 and g_norm > 0) else 1.0
        else:
            trust = 1.0
        step = lr * trust * g
        v = momentum * v + step
        w = w - (momentum * v + step if nesterov else v)
    return w


def run_lars(optimizer, w, grads, name):
    var = keras.Variable(np.array(w, dtype="float32"), name=name)
    for g in grads:
        optimizer.apply([keras.ops.convert_to_tensor(np.array(g, "float32"))], [var])
    return keras.ops.convert_to_numpy(var.value)


@pytest.fixture
def kernel(rng):
    return rng.normal(size=(4, 3)), [rng.normal(size=(4, 3)) for _ in range(3)]


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("num_steps", [1, 2, 3])
def test_weight_matrix_matches_numpy(kernel, nesterov, num_steps):
    w, grads = kernel
    hp = dict(lr=0.5, momentum=0.9, weight_decay=0.1, eta=0.02, nesterov=nesterov)
    opt = LARS(
        learning_rate=hp["lr"],
        momentum=hp["momentum"],
        weight_decay=hp["weight_decay"],
        eta=hp["eta"],
        nesterov=nesterov,
    )
    got = run_lars(opt, w, grads[:num_steps], "kernel")
    want = numpy_lars(w, grads[:num_steps], **hp, excluded=False)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # The trust ratio really acts: plain SGD with momentum would differ a lot.
    sgd = numpy_lars(w, grads[:num_steps], **hp, excluded=True)
    assert np.max(np.abs(sgd - want)) > 0.1


def test_first_step_by_hand():
    # w = [[3, 4]], g = [[0, 1]], wd = 0.5 -> g' = [[1.5, 3]], |w| = 5,
    # |g'| = sqrt(11.25); trust = 0.1 * 5 / sqrt(11.25); w1 = w - lr * trust * g'.
    opt = LARS(learning_rate=2.0, momentum=0.9, weight_decay=0.5, eta=0.1)
    got = run_lars(opt, [[3.0, 4.0]], [[[0.0, 1.0]]], "kernel")
    trust = 0.1 * 5.0 / np.sqrt(11.25)
    want = np.array([[3.0, 4.0]]) - 2.0 * trust * np.array([[1.5, 3.0]])
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("nesterov", [False, True])
def test_bias_is_excluded(rng, nesterov):
    w = rng.normal(size=(5,))
    grads = [rng.normal(size=(5,)) for _ in range(2)]
    opt = LARS(0.1, momentum=0.8, weight_decay=0.3, eta=0.01, nesterov=nesterov)
    got = run_lars(opt, w, grads, "bias")
    want = numpy_lars(w, grads, 0.1, 0.8, 0.3, 0.01, nesterov, excluded=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_exclude_1d_false_adapts_vectors(rng):
    w = rng.normal(size=(5,))
    grads = [rng.normal(size=(5,)) for _ in range(2)]
    opt = LARS(0.1, momentum=0.8, weight_decay=0.3, eta=0.01, exclude_1d=False)
    got = run_lars(opt, w, grads, "scale")
    want = numpy_lars(w, grads, 0.1, 0.8, 0.3, 0.01, False, excluded=False)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_matrix_excluded_by_name(kernel):
    w, grads = kernel
    opt = LARS(0.1, momentum=0.9, weight_decay=0.3, eta=0.01, exclude_names=["head"])
    got = run_lars(opt, w, grads[:2], "head_kernel")
    want = numpy_lars(w, grads[:2], 0.1, 0.9, 0.3, 0.01, False, excluded=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # ... while the default list does not exclude that name.
    got = run_lars(LARS(0.1, 0.9, 0.3, 0.01), w, grads[:2], "head_kernel")
    want = numpy_lars(w, grads[:2], 0.1, 0.9, 0.3, 0.01, False, excluded=False)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_layer_variables_classified():
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, name="dense"),
            keras.layers.BatchNormalization(name="batch_normalization"),
            keras.layers.Dense(2, name="head_supervised"),
        ],
        # Explicit names: automatic ones depend on what other tests created.
        name="sequential",
    )
    opt = LARS(exclude_names=("head_supervised",))
    excluded = {v.path: opt.is_excluded(v) for v in model.trainable_variables}
    assert excluded == {
        "sequential/dense/kernel": False,
        "sequential/dense/bias": True,
        "sequential/batch_normalization/gamma": True,
        "sequential/batch_normalization/beta": True,
        "sequential/head_supervised/kernel": True,
        "sequential/head_supervised/bias": True,
    }


def test_zero_weight_uses_ratio_one(rng):
    g = rng.normal(size=(3, 2))
    opt = LARS(learning_rate=0.5, momentum=0.9, weight_decay=0.1, eta=0.001)
    got = run_lars(opt, np.zeros((3, 2)), [g], "kernel")
    # |w| = 0 -> trust 1, and the decay term is 0: w1 = -lr * g.
    np.testing.assert_allclose(got, -0.5 * g, rtol=1e-6)
    assert np.all(np.isfinite(got))


def test_zero_gradient_is_finite(rng):
    w = rng.normal(size=(3, 2))
    # No decay, zero gradient: ratio 1 and nothing moves.
    opt = LARS(learning_rate=0.5, momentum=0.9, weight_decay=0.0, eta=0.001)
    np.testing.assert_allclose(
        run_lars(opt, w, [np.zeros((3, 2))], "kernel"), w, rtol=1e-6
    )
    # With decay only: g' = wd * w, trust = eta / wd, w1 = w - lr * eta * w.
    opt = LARS(learning_rate=0.5, momentum=0.9, weight_decay=0.1, eta=0.01)
    got = run_lars(opt, w, [np.zeros((3, 2))], "kernel")
    np.testing.assert_allclose(got, w - 0.5 * 0.01 * w, rtol=1e-5)


def test_weight_decay_changes_update(kernel):
    w, grads = kernel
    for wd in (0.0, 0.05, 1.0):
        got = run_lars(LARS(0.3, 0.9, wd, eta=0.05), w, grads[:2], "kernel")
        want = numpy_lars(w, grads[:2], 0.3, 0.9, wd, 0.05, False, excluded=False)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_without_momentum_has_no_slots(kernel):
    w, grads = kernel
    opt = LARS(0.3, momentum=0.0, weight_decay=0.01, eta=0.05)
    got = run_lars(opt, w, grads[:2], "kernel")
    want = numpy_lars(w, grads[:2], 0.3, 0.0, 0.01, 0.05, False, excluded=False)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not any("momentum" in v.path for v in opt.variables)


def test_schedule_drives_learning_rate(kernel):
    w, grads = kernel
    schedule = WarmupCosineDecay(1.0, warmup_steps=2, decay_steps=4)
    opt = LARS(schedule, momentum=0.0, weight_decay=0.0, eta=0.05)
    got = run_lars(opt, w, grads[:2], "kernel")
    # Step 0 uses lr 0 (warmup start), step 1 uses lr 0.5.
    want = numpy_lars(w, grads[1:2], 0.5, 0.0, 0.0, 0.05, False, excluded=False)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _regression_data(rng):
    x = rng.normal(size=(256, 8)).astype("float32")
    true_w = rng.normal(size=(8, 1)).astype("float32")
    y = np.tanh(x @ true_w) + 0.05 * rng.normal(size=(256, 1)).astype("float32")
    return x, y.astype("float32")


def _tiny_model():
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(1),
        ]
    )


def _mse(model, x, y):
    pred = keras.ops.convert_to_numpy(model(x, training=False))
    return float(np.mean((pred - y) ** 2))


def test_fit_lowers_loss(rng):
    x, y = _regression_data(rng)
    model = _tiny_model()
    # Excluded variables (biases, batch norm) take plain SGD steps at the full
    # rate, so the rate stays modest; eta sets the relative step of the kernels.
    schedule = WarmupCosineDecay(0.1, warmup_steps=8, decay_steps=72)
    model.compile(optimizer=LARS(schedule, momentum=0.9, eta=0.1), loss="mse")
    start = _mse(model, x, y)
    history = model.fit(x, y, batch_size=32, epochs=10, verbose=0)
    end = _mse(model, x, y)
    assert np.all(np.isfinite(history.history["loss"]))
    assert end < 0.5 * start, (start, end)


def test_config_round_trip():
    opt = LARS(
        learning_rate=WarmupCosineDecay(0.6, 5, 20, alpha=0.1),
        momentum=0.8,
        weight_decay=1e-4,
        eta=0.002,
        nesterov=True,
        exclude_names=("bias", "head"),
        exclude_1d=False,
        clipnorm=1.0,
    )
    config = opt.get_config()
    clone = LARS.from_config(copy.deepcopy(config))  # from_config edits its input
    assert clone.get_config() == config
    assert isinstance(clone._learning_rate, WarmupCosineDecay)
    assert clone._learning_rate.get_config() == opt._learning_rate.get_config()
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(again, LARS)
    assert again.get_config() == config


def test_keras_file_round_trip_with_state(tmp_path, rng):
    x, y = _regression_data(rng)
    model = _tiny_model()
    model.compile(
        optimizer=LARS(WarmupCosineDecay(0.5, 4, 40), momentum=0.9, eta=0.02),
        loss="mse",
    )
    model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    path = str(tmp_path / "lars.keras")
    model.save(path)
    loaded = keras.models.load_model(path)

    assert isinstance(loaded.optimizer, LARS)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 8
    old_slots = [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables]
    new_slots = [keras.ops.convert_to_numpy(v) for v in loaded.optimizer.variables]
    assert len(old_slots) == len(new_slots) > 1
    for a, b in zip(old_slots, new_slots):
        np.testing.assert_array_equal(a, b)
    assert any(np.any(s != 0) for s in old_slots[1:])  # momentum really saved

    # Continuing both for one more batch gives the same weights.
    model.train_on_batch(x[:64], y[:64])
    loaded.train_on_batch(x[:64], y[:64])
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(learning_rate=-0.1), r"`learning_rate` must be a number in \[0, inf\)"),
        (dict(momentum=1.0), r"`momentum` must be a number in \[0, 1\)\. Received"),
        (dict(momentum=-0.1), "`momentum` must be"),
        (dict(weight_decay=-1e-4), "`weight_decay` must be"),
        (dict(eta=0.0), r"`eta` must be a number in \(0, inf\)"),
        (dict(eta=float("nan")), "`eta` must be"),
        (dict(nesterov=True, momentum=0.0), "`nesterov` must be False when"),
        (dict(exclude_names=["("]), "'\\(' is not a valid regular expression"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LARS(**kwargs)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(learning_rate="fast"), "learning_rate"),
        (dict(learning_rate=None), "learning_rate"),
        (dict(momentum="0.9"), "momentum"),
        (dict(nesterov="yes"), "nesterov"),
        (dict(exclude_names=[1]), "exclude_names"),
        (dict(exclude_names=3), "exclude_names"),
        (dict(exclude_1d=1), "exclude_1d"),
    ],
)
def test_bad_argument_types(kwargs, argument):
    # A TypeError, that is also the ValueError LARS has always raised for them.
    for error in (TypeError, ValueError):
        with pytest.raises(error, match=f"`{argument}` must be"):
            LARS(**kwargs)
