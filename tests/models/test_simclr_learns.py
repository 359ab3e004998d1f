"""SimCLR learns on real images: loss falls and kNN accuracy beats random init."""

import keras
import numpy as np

from keras_contrastive.datasets import load_cifar10_sample
from keras_contrastive.evaluation import knn_classify
from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter
from keras_contrastive.models import SimCLR


def conv_encoder():
    blocks = [keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1)]
    for i, filters in enumerate((16, 32, 64)):
        blocks += [
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
        ]
        if i < 2:
            blocks.append(keras.layers.MaxPooling2D())
    blocks.append(keras.layers.GlobalAveragePooling2D())
    return keras.Sequential(blocks)


def test_short_fit_on_cifar_beats_random_init():
    (x_train, y_train), (x_val, y_val) = load_cifar10_sample()
    # The sample is stored class by class: random subsets cover all ten classes.
    rng = np.random.default_rng(0)
    train, val = rng.permutation(len(x_train))[:1024], rng.permutation(len(x_val))[:500]
    x_train, y_train, x_val, y_val = (
        x_train[train],
        y_train[train],
        x_val[val],
        y_val[val],
    )
    encoder = conv_encoder()

    def knn_accuracy():
        bank = encoder.predict(x_train, batch_size=512, verbose=0)
        queries = encoder.predict(x_val, batch_size=500, verbose=0)
        return np.mean(knn_classify(bank, y_train, queries, k=20) == y_val)

    random_init = knn_accuracy()
    model = SimCLR(
        encoder,
        projection_head=ProjectionHead(hidden_dims=(64,), output_dim=32),
        augmenter=SimCLRAugmenter(32, crop_scale=(0.2, 1.0), blur=False),
    )
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    history = model.fit(x_train, batch_size=128, epochs=3, verbose=0)
    losses = history.history["loss"]
    trained = knn_accuracy()
    assert losses[-1] < losses[0] - 0.1, losses
    assert min(history.history["embedding_std"]) > 0.05
    # Measured here: about +5 to +6 points on every backend (e.g. 33% -> 39%).
    assert trained > random_init + 0.02, (random_init, trained)
