"""The same checks for every method of the harness (tests/methods/harness.py).

- fit on NumPy arrays, a `tf.data.Dataset` and a `keras.utils.PyDataset` of the
  same batches gives the same per-step losses (same seeds, same order);
- `.keras` save/load and `keras.callbacks.BackupAndRestore` resume exactly: the
  resumed epoch's loss and every variable (networks, optimizer, queue, bank,
  momentum copies, step counters, random state) equal the uninterrupted run's;
- under `mixed_bfloat16` every variable stays float32 and finite, and the loss of
  the first step is the float32 loss within bfloat16's precision;
- bad input gets our clear errors (encoder, batch size, the method's own bad
  inputs: image rank, ids, texts; and its own arguments).

Text methods (`TextMethod`: SBERT, SimCSE) add a fourth input kind, lists of
strings ("texts"), and their "py_dataset" is a `TokenizedTexts`.

4-device equality runs in tests/distribute/test_equality.py (cases "method/...").
"""

import inspect

import keras
import numpy as np
import pytest

import keras_contrastive.models as models
from tests.methods.harness import METHODS, NUM_EXAMPLES, flip_and_noise
from tests.methods.helpers import to_numpy

BATCH = 8
BASES = {
    models.ContrastiveModel,
    models.ImageContrastiveModel,
    models.MomentumModel,
    models.PredictorModel,
    models.ExampleIdsInput,
}


def public_methods():
    return {
        obj
        for name in models.__all__
        if inspect.isclass(obj := getattr(models, name))
        and issubclass(obj, models.ContrastiveModel)
        and obj not in BASES
    }


def test_every_method_is_in_the_harness():
    covered = {type(method.model()) for method in METHODS.values()}
    missing = public_methods() - covered
    assert not missing, f"methods without a harness entry: {sorted(missing, key=str)}"


class StepLosses(keras.callbacks.Callback):
    """Each step's own loss, from the running means Keras logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self.means = []

    def on_train_batch_end(self, batch, logs=None):
        self.means.append(float(logs["loss"]))

    def losses(self):
        means = np.asarray(self.means)
        sums = means * np.arange(1, len(means) + 1)
        return np.diff(np.concatenate([[0.0], sums]))


def make(name, seed=0, augmenter=flip_and_noise, optimizer=None, **compile_kwargs):
    keras.utils.set_random_seed(seed)
    model = METHODS[name].model(augmenter())
    optimizer = optimizer or keras.optimizers.Adam(1e-2)
    model.compile(optimizer=optimizer, **compile_kwargs)
    return model


@pytest.mark.parametrize("name", sorted(METHODS))
def test_numpy_tf_data_and_py_dataset_inputs_train_alike(name):
    method = METHODS[name]
    x, y = method.data(), method.labels()
    losses = {}
    for kind in method.input_kinds:
        # Compiled once (NumPy); the datasets run eagerly to spare compile time.
        # SGD: Adam's first steps are ~ lr * sign(gradient), which turns the
        # round-off of near-zero gradient entries into differences of lr.
        optimizer = keras.optimizers.SGD(0.05)
        model = make(name, optimizer=optimizer, run_eagerly=kind != "numpy")
        args, fit_kwargs = method.fit_input(kind, x, y, BATCH)
        recorder = StepLosses()
        model.fit(*args, epochs=1, verbose=0, callbacks=[recorder], **fit_kwargs)
        losses[kind] = recorder.losses()
    assert len(losses["numpy"]) == NUM_EXAMPLES // BATCH
    assert np.all(np.isfinite(losses["numpy"]))
    for kind in method.input_kinds[1:]:
        # Same batches, same draws: equal up to the round-off of compiled (NumPy
        # run) against eager kernels; batches in another order or other draws
        # would differ in the first digits.
        np.testing.assert_allclose(
            losses[kind], losses["numpy"], rtol=1e-3, err_msg=kind
        )


def state(model):
    """Every variable that decides the next step, in a fixed order."""
    variables = list(model.variables) + list(model.optimizer.variables)
    return [to_numpy(v) for v in variables]


def assert_same_state(a, b):
    a, b = state(a), state(b)
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5, err_msg=str(i))


class Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("interrupted")


@pytest.mark.parametrize("name", sorted(METHODS))
def test_save_load_and_backup_and_restore_resume_exactly(name, tmp_path):
    method = METHODS[name]
    x, y = method.data(), method.labels()
    fit = dict(y=y, batch_size=BATCH, shuffle=False, verbose=0)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    # Eager steps: no compilation per model (the pinned-behaviour and input tests
    # cover the compiled steps), while JAX still runs its stateless step.
    reference = make(name, seed=0, run_eagerly=True)
    with pytest.raises(RuntimeError, match="interrupted"):
        reference.fit(
            x, epochs=2, callbacks=method.callbacks() + [backup, Interrupt()], **fit
        )
    path = str(tmp_path / "model.keras")
    reference.save(path)
    # The uninterrupted second epoch, from the same state.
    expected = reference.fit(x, epochs=1, callbacks=method.callbacks(), **fit)
    expected = expected.history["loss"]

    loaded = keras.models.load_model(path)
    assert type(loaded) is type(reference)
    resumed = loaded.fit(x, epochs=1, callbacks=method.callbacks(), **fit)
    np.testing.assert_allclose(resumed.history["loss"], expected, rtol=1e-5)
    assert_same_state(loaded, reference)

    restarted = make(name, seed=7, run_eagerly=True)  # other initial weights
    history = restarted.fit(x, epochs=2, callbacks=method.callbacks() + [backup], **fit)
    np.testing.assert_allclose(history.history["loss"], expected, rtol=1e-5)
    assert_same_state(restarted, reference)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_mixed_bfloat16_keeps_state_float32(name):
    x, y = METHODS[name].data(n=BATCH), METHODS[name].labels(n=BATCH)
    losses = {}
    for policy in ("float32", "mixed_bfloat16"):
        keras.config.set_dtype_policy(policy)
        model = make(name, augmenter=keras.layers.Identity, run_eagerly=True)
        model.compile(optimizer=keras.optimizers.SGD(0.01), run_eagerly=True)
        history = model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        losses[policy] = history.history["loss"][0]
        for variable in model.variables:
            dtype = keras.backend.standardize_dtype(variable.dtype)
            assert dtype not in ("float16", "bfloat16"), variable.path
            if "float" in dtype:
                assert np.all(np.isfinite(to_numpy(variable))), variable.path
    keras.config.set_dtype_policy("float32")
    # bfloat16 keeps 8 significant bits (unit roundoff 2^-8 ~ 4e-3).
    np.testing.assert_allclose(losses["mixed_bfloat16"], losses["float32"], rtol=5e-2)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_bad_input_gets_clear_errors(name):
    method = METHODS[name]
    encoder = method.encoder_name
    with pytest.raises(TypeError, match=f"`{encoder}` must be a Keras layer"):
        method.model(encoder="not a network")
    model = make(name)
    x, y = method.data(), method.labels()
    with pytest.raises(ValueError, match="`batch_size` must be at least 2"):
        model.fit(x, y, batch_size=1, epochs=1, verbose=0)
    for bad_x, bad_y, error, match in method.bad_inputs():
        with pytest.raises(error, match=match):
            make(name).fit(bad_x, bad_y, batch_size=BATCH, epochs=1, verbose=0)
    for factory, error, match in method.bad_arguments:
        with pytest.raises(error, match=match):
            factory()
