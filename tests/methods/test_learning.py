"""BYOL and SimSiam learn on real images: no collapse, kNN above random init.

CIFAR-10 images from the bundled sample, downsized to 8x8 so that ~400 steps fit
the test budget. Random init gives 26-28% kNN top-1 (k=20) on 2,952 queries;
measured gains with the conftest seed (BYOL / SimSiam, points): JAX +1.6 / +0.5,
TensorFlow +4.4 / +4.5, PyTorch +3.6 / +1.6 (and +2.1 to +2.9 on JAX with
other seeds). Short BYOL/SimSiam runs gain slowly: the margin is small.
"""

import keras
import numpy as np
import pytest

from keras_contrastive.layers import PredictionHead, ProjectionHead, SimCLRAugmenter
from keras_contrastive.models.byol import BYOL, SimSiam
from tests.methods.helpers import cifar_sample, knn_accuracy

SIZE = 8


def conv_encoder():
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            keras.layers.Conv2D(16, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )


@pytest.mark.parametrize("cls", [BYOL, SimSiam])
def test_no_collapse_and_knn_beats_random_init(cls):
    (x_train, y_train), (x_test, y_test) = cifar_sample(SIZE)
    # The sample is stored class by class: train on a random subset of 2,048 and
    # query the kNN with the other 1,952 and the 1,000 held-out images.
    rows = np.random.default_rng(0).permutation(len(x_train))
    train = (x_train[rows[:2048]], y_train[rows[:2048]])
    val = (
        np.concatenate([x_test, x_train[rows[2048:]]]),
        np.concatenate([y_test, y_train[rows[2048:]]]),
    )
    encoder = conv_encoder()
    random_init = knn_accuracy(encoder, train, val, k=20)
    kwargs = {"momentum": 0.9} if cls is BYOL else {}
    model = cls(
        encoder,
        projection_head=ProjectionHead(
            hidden_dims=(64,), output_dim=32, output_batch_norm=True
        ),
        prediction_head=PredictionHead(hidden_dims=(64,), output_dim=32),
        augmenter=SimCLRAugmenter(SIZE, crop_scale=(0.5, 1.0), blur=False),
        **kwargs,
    )
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    history = model.fit(train[0], batch_size=64, epochs=12, verbose=0)
    losses, stds = history.history["loss"], history.history["embedding_std"]
    assert losses[-1] < losses[0] - 0.3, losses
    # Collapse sends the std of the normalised projections to 0; spread-out
    # 32-d embeddings have about 1 / sqrt(32) = 0.18.
    assert min(stds) > 0.5 / np.sqrt(32), stds
    trained = knn_accuracy(model.encoder, train, val, k=20)
    assert trained > random_init, (random_init, trained)
