"""A bad batch never poisons a model (every method of the harness, 3 backends).

- one NaN pixel: the step is skipped whole (counted in `skipped_steps`, NaN
  logged loss), every variable (weights, optimizer, batch-norm statistics, queue,
  bank, momentum copies) stays finite;
- consecutive non-finite steps stop `fit` with an error naming epoch and batch;
- a final batch below the method's minimum is not a step: the logged loss is the
  mean over the real steps;
- batch-level `BackupAndRestore` is refused; epoch-level backups survive a SIGKILL
  in the middle of an epoch and resume exactly (weights, optimizer, queue / bank,
  momentum copies, random state and the logged history);
- NaN images in every 5th batch for 3 epochs on real images: the model ends
  finite, the skip count is the number of poisoned batches, and kNN still beats
  the random-init encoder.
"""

import csv
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_contrastive.callbacks import MemoryBankRefresh
from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter
from keras_contrastive.layers.augmentation import value_range as range_check
from keras_contrastive.models import MemoryBankModel, MoCo
from tests.conftest import BACKEND
from tests.methods.harness import METHODS
from tests.methods.helpers import conv_encoder, knn_accuracy, split_cifar, to_numpy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BATCH = 8
NUM_TRAIN = 2048


def images_of(x):
    """The float image array inside a method's input, or None (text methods)."""
    if isinstance(x, dict):
        x = x.get("images")
    elif isinstance(x, tuple):
        x = x[0]
    if isinstance(x, np.ndarray) and x.ndim == 4 and x.dtype.kind == "f":
        return x
    return None


def make(name, seed=0):
    keras.utils.set_random_seed(seed)
    model = METHODS[name].model(keras.layers.Identity())
    model.compile(optimizer=keras.optimizers.SGD(0.05), run_eagerly=True)
    return model


def assert_all_finite(model):
    for variable in list(model.variables) + list(model.optimizer.variables):
        value = to_numpy(variable)
        if value.dtype.kind == "f":
            assert np.all(np.isfinite(value)), variable.path


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_nan_pixel_is_skipped_and_poisons_nothing(name):
    x = METHODS[name].data(dtype="float32")
    if images_of(x) is None:
        pytest.skip("token inputs cannot hold NaN")
    images_of(x)[1, 0, 0, 0] = np.nan  # in the first batch
    model = make(name)
    history = model.fit(x, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    assert history.history["skipped_steps"] == [1.0]
    assert np.isnan(history.history["loss"][0])
    assert_all_finite(model)
    clean = METHODS[name].data(n=BATCH, dtype="float32")
    assert np.all(np.isfinite(to_numpy(model.predict(clean, verbose=0))))


def test_terminate_on_nan_stops_at_the_poisoned_batch():
    x = METHODS["simclr"].data(dtype="float32")
    x[9, 0, 0, 0] = np.nan  # in the second batch
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(batch)
    )
    model = make("simclr")
    model.fit(
        x,
        batch_size=BATCH,
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[record, keras.callbacks.TerminateOnNaN()],
    )
    assert seen == [0, 1]
    assert_all_finite(model)


def test_consecutive_skips_stop_fit_with_a_clear_error():
    x = np.full((48, 8, 8, 3), np.nan, "float32")
    model = make("simclr")
    with pytest.raises(FloatingPointError, match=r"5 consecutive .*epoch 1, batch 5"):
        model.fit(x, batch_size=BATCH, epochs=1, verbose=0)
    assert_all_finite(model)


@pytest.mark.parametrize("name", ["simclr", "moco", "memory_bank"])
def test_a_final_batch_below_the_minimum_is_not_a_step(name):
    method = METHODS[name]
    x = method.data(n=BATCH + 1)
    first = keras.tree.map_structure(lambda a: a[:BATCH], x)
    reference = make(name).fit(first, batch_size=BATCH, shuffle=False, verbose=0)
    model = make(name)
    history = model.fit(x, batch_size=BATCH, shuffle=False, verbose=0)
    for key in ("loss", "contrastive_accuracy", "embedding_std"):
        np.testing.assert_allclose(
            history.history[key], reference.history[key], rtol=1e-5
        )
    assert_all_finite(model)


@pytest.mark.parametrize(
    "images, value_range",
    [
        (np.full((16, 8, 8, 3), 40000, "uint16"), (0, 255)),  # 16-bit images
        (np.full((16, 8, 8, 3), 200, "uint8"), (0, 1)),  # would clip every pixel
    ],
    ids=["uint16", "uint8_under_unit_range"],
)
@pytest.mark.parametrize("name", ["simclr", "memory_bank"])
def test_images_outside_value_range_fail_before_compiling(name, images, value_range):
    x = {"ids": np.arange(16), "images": images} if name == "memory_bank" else images
    keras.utils.set_random_seed(0)
    model = METHODS[name].model(SimCLRAugmenter((8, 8), value_range=value_range))
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="`value_range` must be"):
        model.fit(x, batch_size=BATCH, verbose=0)
    assert not model.built  # nothing was built or compiled
    if BACKEND == "tensorflow":  # the check reads a dataset's first batch too
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices(x).batch(BATCH)
        with pytest.raises(ValueError, match="`value_range` must be"):
            model.fit(dataset, verbose=0)


def test_unit_float_images_under_0_255_warn_and_nan_pixels_pass_the_check(
    monkeypatch,
):
    monkeypatch.setattr(range_check, "_WARNED", set())  # warnings are once only
    x = METHODS["simclr"].data(dtype="float32") / 255.0  # in [0, 1]
    x[1, 0, 0, 0] = np.nan
    model = METHODS["simclr"].model(SimCLRAugmenter((8, 8), value_range=(0, 255)))
    model.compile(optimizer="sgd")
    with pytest.warns(UserWarning, match="nearly black"):
        model.check_fit_data(x)


@pytest.mark.parametrize("ids", [np.arange(16) + 0.5, np.arange(16) * 1.0 + np.nan])
def test_fractional_example_ids_are_refused(ids):
    model = make("memory_bank")
    x = {"ids": ids, "images": METHODS["memory_bank"].data(n=16)["images"]}
    with pytest.raises(ValueError, match="integer example ids"):
        model.fit(x, batch_size=BATCH, verbose=0)


def test_batch_level_backups_are_refused(tmp_path):
    model = make("moco")
    backup = keras.callbacks.BackupAndRestore(str(tmp_path), save_freq=2)
    with pytest.raises(ValueError, match="`save_freq` must be 'epoch'"):
        model.fit(METHODS["moco"].data(), batch_size=BATCH, callbacks=[backup])


def _run(name, mode, folder):
    env = dict(os.environ, KERAS_BACKEND=BACKEND, PYTHONHASHSEED="0")
    module = "tests.methods.kill_resume_run"
    command = [sys.executable, "-m", module, name, mode, str(folder)]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def _history(folder):
    with open(os.path.join(folder, "history.csv")) as f:
        rows = csv.DictReader(f)  # "NA": the validation columns, unused here
        return [{k: float(v) for k, v in r.items() if v != "NA"} for r in rows]


@pytest.mark.parametrize("name", ["moco", "memory_bank"])
def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(name, tmp_path):
    full, interrupted = tmp_path / "full", tmp_path / "interrupted"
    full.mkdir()
    interrupted.mkdir()
    assert _run(name, "full", full).returncode == 0
    killed = _run(name, "killed", interrupted)
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILL
    assert len(_history(interrupted)) == 1  # the first epoch only
    resumed = _run(name, "resume", interrupted)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, got = _history(full), _history(interrupted)
    assert [row["epoch"] for row in got] == [0.0, 1.0, 2.0]
    for want, have in zip(expected, got):
        for key, value in want.items():
            np.testing.assert_allclose(have[key], value, rtol=1e-5, err_msg=key)
    with np.load(full / "final.npz") as a, np.load(interrupted / "final.npz") as b:
        assert a.files == b.files
        for key in a.files:
            np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [MoCo, MemoryBankModel])
def test_nan_images_every_fifth_batch_still_learn(cls):
    size, batch = 8, 16
    train, queries = split_cifar(size, num_train=NUM_TRAIN)
    images = train[0].astype("float32")
    poisoned = list(range(0, len(images) // batch, 5))
    for b in poisoned:
        images[b * batch + 3] = np.nan
    encoder = conv_encoder(size)
    random_init = knn_accuracy(encoder, train, queries, k=20)
    common = dict(
        projection_head=ProjectionHead(hidden_dims=(64,), output_dim=32),
        augmenter=SimCLRAugmenter(size, crop_scale=(0.5, 1.0), blur=False),
    )
    if cls is MoCo:
        model = MoCo(encoder, queue_size=512, momentum=0.99, **common)
        x, learning_rate, callbacks = images, 2e-3, []
    else:  # 4096 negatives, the bank refreshed after every epoch
        model = MemoryBankModel(encoder, len(images), temperature=0.1, **common)
        x = {"ids": np.arange(len(images)), "images": images}
        learning_rate = 2e-3
        callbacks = [MemoryBankRefresh(x, verbose=0)]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    history = model.fit(
        x, batch_size=batch, epochs=3, shuffle=False, verbose=0, callbacks=callbacks
    )
    assert history.history["skipped_steps"] == [float(len(poisoned))] * 3
    assert_all_finite(model)
    trained = knn_accuracy(model.encoder, train, queries, k=20)
    assert trained > random_init, (random_init, trained)
