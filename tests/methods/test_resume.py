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
from keras_contrastive.models import BYOL, DeepInfoMax, MemoryBankModel, MoCo
from keras_contrastive.models.deep_infomax import CriticEmbedding
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


def byol_given_only_a_prediction_head():
    # 128 features: the default projection head's variables then have the
    # shapes of this prediction head's, so moments restored in the wrong order
    # would load without an error (onto the wrong weights).
    keras.utils.set_random_seed(0)
    return BYOL(
        tiny_encoder(filters=128),
        prediction_head=PredictionHead(hidden_dims=(128,), output_dim=128),
        augmenter=flip_and_noise(),
        momentum=0.9,
    )


def deep_infomax_given_only_a_global_network():
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, strides=2, padding="same", name="local"),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    return DeepInfoMax(
        encoder, "local", global_network=CriticEmbedding(6), embedding_dim=6
    )


@pytest.mark.parametrize(
    "make_model, networks",
    [
        (byol_given_only_a_prediction_head, ("projection_head", "prediction_head")),
        (deep_infomax_given_only_a_global_network, ("local_network", "global_network")),
    ],
)
def test_optional_networks_given_or_default_reload_with_their_moments(
    make_model, networks, tmp_path
):
    # A network given to the constructor and one left to its default: Keras
    # orders variables (and the optimizer's moments, saved by position) by
    # assignment, and `from_config` gives both to the constructor.
    x = random_images(np.random.default_rng(0), n=8)
    fit = dict(batch_size=4, shuffle=False, verbose=0)
    reference = make_model()
    reference.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    reference.fit(x, epochs=1, **fit)
    path = str(tmp_path / "model.keras")
    reference.save(path)
    loaded = keras.models.load_model(path)
    expected = reference.fit(x, epochs=1, **fit).history["loss"]
    resumed = loaded.fit(x, epochs=1, **fit).history["loss"]
    np.testing.assert_allclose(resumed, expected, rtol=1e-5)
    for name in ("encoder", *networks):
        for a, b in zip(
            getattr(reference, name).weights, getattr(loaded, name).weights
        ):
            np.testing.assert_allclose(
                to_numpy(a), to_numpy(b), rtol=1e-4, atol=1e-5, err_msg=a.path
            )
