"""Exact resumption: `model.save` / `load_model` and `BackupAndRestore`.

For each method, a run is killed after its first epoch (with a backup), saved,
and continued for the second epoch; that second epoch is compared with (a) the
saved model loaded and trained for one epoch, and (b) a freshly initialised
model resumed by `keras.callbacks.BackupAndRestore`: the loss and the final state
(weights, optimizer, momentum copies, queue, bank, step counter, random state)
must agree to float tolerance. Views are random (seeded augmenters), so
this also checks that the random state is restored.
"""

import keras
import numpy as np
import pytest

from keras_contrastive.callbacks.momentum_schedule import MomentumSchedule
from keras_contrastive.layers import PredictionHead, ProjectionHead
from keras_contrastive.models import BYOL, MemoryBankModel, MoCo
from tests.methods.helpers import random_images, tiny_encoder, to_numpy


def flip_and_noise():
    # A cheap random augmenter with per-call randomness (seeded).
    return keras.Sequential(
        [keras.layers.RandomFlip(seed=1), keras.layers.GaussianNoise(0.5, seed=2)]
    )


def make(method, seed):
    keras.utils.set_random_seed(seed)
    head = ProjectionHead(hidden_dims=(8,), output_dim=4)
    if method == "moco":
        model = MoCo(
            tiny_encoder(),
            projection_head=head,
            augmenter=flip_and_noise(),
            queue_size=10,
            momentum=0.9,
            seed=3,
        )
    elif method == "byol":
        model = BYOL(
            tiny_encoder(),
            projection_head=head,
            prediction_head=PredictionHead(hidden_dims=(8,), output_dim=4),
            augmenter=flip_and_noise(),
            momentum=0.9,
        )
    else:
        model = MemoryBankModel(
            tiny_encoder(),
            8,
            projection_head=head,
            augmenter=flip_and_noise(),
            num_negatives=6,
            seed=3,
        )
    # Eager steps: no compilation per model (the compiled steps are covered by
    # the other tests), while JAX still runs its stateless step.
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    return model


def data(method):
    images = random_images(np.random.default_rng(0), n=8)
    return (np.arange(8), images) if method == "memory_bank" else images


def callbacks(method):
    if method == "memory_bank":
        return []
    return [MomentumSchedule(0.9, 1.0, total_steps=4)]


STATE = {
    "moco": ("key_encoder", "key_head", "queue", "momentum_state"),
    "byol": ("prediction_head", "target_encoder", "target_head", "momentum_state"),
    "memory_bank": ("memory_bank",),
}


def state(model, method):
    """Every variable that decides the next step, in a fixed order."""
    parts = ("encoder", "projection_head") + STATE[method]
    variables = [v for name in parts for v in getattr(model, name).variables]
    variables += list(model.optimizer.variables) + model._random_states()
    return [to_numpy(v) for v in variables]


def assert_same_state(a, b, method):
    a, b = state(a, method), state(b, method)
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5, err_msg=str(i))


class Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("interrupted")


@pytest.mark.parametrize("method", ["moco", "byol", "memory_bank"])
def test_save_load_and_backup_and_restore_resume_exactly(method, tmp_path):
    x = data(method)
    fit = dict(batch_size=4, shuffle=False, verbose=0)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))

    # A run killed after its first epoch (backed up at the epoch's end).
    reference = make(method, seed=0)
    with pytest.raises(RuntimeError, match="interrupted"):
        reference.fit(
            x, epochs=2, callbacks=callbacks(method) + [backup, Interrupt()], **fit
        )
    path = str(tmp_path / "model.keras")
    reference.save(path)
    # The uninterrupted second epoch, from the same state.
    expected = reference.fit(x, epochs=1, callbacks=callbacks(method), **fit)
    expected = expected.history["loss"]

    loaded = keras.models.load_model(path)
    resumed = loaded.fit(x, epochs=1, callbacks=callbacks(method), **fit)
    np.testing.assert_allclose(resumed.history["loss"], expected, rtol=1e-5)
    assert_same_state(loaded, reference, method)

    restarted = make(method, seed=7)  # other initial weights: all must be restored
    history = restarted.fit(x, epochs=2, callbacks=callbacks(method) + [backup], **fit)
    np.testing.assert_allclose(history.history["loss"], expected, rtol=1e-5)
    assert_same_state(restarted, reference, method)
