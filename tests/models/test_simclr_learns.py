"""SimCLR learns on real images, at both colour strengths: loss falls and kNN
accuracy beats random init.

CIFAR-10 images from the bundled sample downsized to 8x8 (as the BYOL/SimSiam
learning test), 2,048 training images of all ten classes, 8 epochs. Random init
gives 25-28% kNN top-1 (k=20) on 2,952 queries. Gains over random init measured
with seeds 1234 (the conftest seed), 0, 1 and 2, in points, mean +- standard
deviation (`benchmarks/learning_test_margins.py` on each backend):

    strength   TensorFlow           JAX                  PyTorch
    0.5        5.3 +- 1.2 (min 4.2) 4.3 +- 0.8 (min 3.1) 5.2 +- 1.2 (min 3.7)
    1.0        3.3 +- 1.0 (min 2.4) 2.5 +- 0.5 (min 2.0) 3.8 +- 1.0 (min 2.7)

(0.5 is SimCLR's CIFAR-10 setting, 1.0 its ImageNet one and lightly's default.)
The margins sit below every seed's gain on every backend: 2 points at 0.5, 1
point at 1.0 (stronger colour distortion learns more slowly in 128 steps).
"""

import keras
import pytest

from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter
from keras_contrastive.models import SimCLR
from tests.methods.helpers import conv_encoder, knn_accuracy, split_cifar

SIZE = 8


def short_fit(color_strength, train, queries):
    """The test's recipe: (random-init kNN top-1, trained model, fit history)."""
    encoder = conv_encoder(SIZE)
    random_init = knn_accuracy(encoder, train, queries, k=20)
    augmenter = SimCLRAugmenter(
        SIZE, crop_scale=(0.5, 1.0), blur=False, color_strength=color_strength
    )
    model = SimCLR(
        encoder,
        projection_head=ProjectionHead(hidden_dims=(64,), output_dim=32),
        augmenter=augmenter,
    )
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    history = model.fit(train[0], batch_size=128, epochs=8, verbose=0)
    return random_init, model, history


@pytest.mark.parametrize("color_strength, margin", [(0.5, 0.02), (1.0, 0.01)])
def test_short_fit_on_cifar_beats_random_init(color_strength, margin):
    train, queries = split_cifar(SIZE)
    random_init, model, history = short_fit(color_strength, train, queries)
    losses = history.history["loss"]
    trained = knn_accuracy(model.encoder, train, queries, k=20)
    assert losses[-1] < losses[0] - 0.3, losses
    assert min(history.history["embedding_std"]) > 0.05
    assert trained > random_init + margin, (random_init, trained)
