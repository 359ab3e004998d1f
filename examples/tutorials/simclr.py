# %% [markdown]
# # SimCLR on CIFAR-10
#
# SimCLR (Chen et al., 2020) learns an image representation without labels: every
# image is augmented twice, an encoder and a projection head map both views to
# vectors, and the NT-Xent loss pulls each pair of views together while pushing
# it away from the other 2N - 2 views of the batch. This tutorial trains a small
# CNN with it on CIFAR-10, looks at what the augmentation does and at the training
# curves, and measures the representation the way the papers do: a kNN classifier
# and a linear probe on the frozen features.
#
# It runs as a script (`python examples/tutorials/simclr.py`, a few minutes on a
# laptop CPU on the bundled 5,000-image sample) or as a notebook (jupytext). With
# `--full` it trains on the whole CIFAR-10 (downloaded by Keras) for 200 epochs.

# %%
import os
import sys

import keras
import matplotlib.pyplot as plt

from keras_contrastive.callbacks import KNNMonitor
from keras_contrastive.datasets import (
    CIFAR10_CLASSES,
    load_cifar10,
    load_cifar10_sample,
)
from keras_contrastive.evaluation import compute_embeddings, knn_evaluate, linear_probe
from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter
from keras_contrastive.models import SimCLR
from keras_contrastive.visualization import (
    plot_augmentations,
    plot_embeddings,
    plot_history,
    plot_nearest_neighbors,
)

# "test" runs in seconds (the test suite), "docs" in minutes (the rendered page),
# "full" (--full) is the real recipe.
SIZE = "full" if "--full" in sys.argv else os.environ.get("KC_TUTORIAL_SIZE", "docs")
EPOCHS = {"test": 1, "docs": 25, "full": 200}[SIZE]
keras.utils.set_random_seed(0)
print(f"Keras {keras.__version__}, backend {keras.backend.backend()}, size {SIZE}")

# %% [markdown]
# ## The data
#
# The package ships 5,000 CIFAR-10 training images (500 per class) so that this
# runs offline; 1,000 of them are held out, with their labels, to score the
# representation. SimCLR itself never sees a label.

# %%
if SIZE == "full":
    (x_train, y_train), (x_test, y_test) = load_cifar10()  # 50,000 / 10,000
else:
    (x_train, y_train), (x_test, y_test) = load_cifar10_sample()
if SIZE == "test":
    x_train, y_train, x_test, y_test = (
        x_train[::8],
        y_train[::8],
        x_test[::5],
        y_test[::5],
    )
print(f"train {x_train.shape} {x_train.dtype}, held out {x_test.shape}")

# %% [markdown]
# ## The augmentation: look at it first
#
# The views are the whole of SimCLR's supervision: what stays the same between
# two views of one image is what the encoder learns to keep. The CIFAR-10 recipe
# (the paper's appendix B.9) is a random resized crop, a horizontal flip, colour
# distortion of strength 0.5 and random grayscale, without blur at 32x32. The
# methods take raw images in `value_range` (0, 255) and augment them on the
# fly, inside the training step.

# %%
augmenter = SimCLRAugmenter.cifar10()
plot_augmentations(x_train[::500][:6], augmenter, num_views=5)
plt.show()

# %% [markdown]
# ## The encoder
#
# Any Keras model that maps images to a 2-D `(batch, features)` tensor is an
# encoder. Here: three conv-batchnorm-ReLU blocks and global average pooling,
# on the images averaged down to 16x16 (a quarter of the compute, which keeps a
# CPU run short). The first layer scales the pixels to (-1, 1), centring them:
# the convolutions' zero padding is then grey, not black, which gained SimCLR
# 0.5 to 1.4 points on the benchmark recipe at colour strength 0.5
# (docs/methods.md). Before training, its random features already classify
# over a quarter of the held-out images correctly with a kNN (k = 200, Wu et
# al. 2018): that is the baseline SimCLR has to beat.


# %%
def make_encoder(widths=(32, 64, 128)):
    layers = [
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.AveragePooling2D(2),
    ]
    for i, filters in enumerate(widths):
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
        ]
        if i < len(widths) - 1:
            layers.append(keras.layers.MaxPooling2D(2))
    layers.append(keras.layers.GlobalAveragePooling2D())
    return keras.Sequential(layers, name="encoder")


encoder = make_encoder()
knn_before = knn_evaluate(encoder, (x_train, y_train), (x_test, y_test))
print(f"random-init encoder: held-out kNN accuracy {100 * knn_before:.1f}%")

# %% [markdown]
# ## Training with `model.fit`
#
# `SimCLR` wraps the encoder with a projection head (an MLP whose output the loss
# sees; the encoder's features are what you keep) and the augmenter. `fit` takes
# the raw images: each step draws two views of the batch, encodes them, and
# minimises NT-Xent at the given temperature. `KNNMonitor` scores the encoder on
# the held-out images after every epoch, so the curve you watch is the one you
# care about.

# %%
model = SimCLR(
    encoder,
    projection_head=ProjectionHead(hidden_dims=(128,), output_dim=64),
    augmenter=augmenter,
    temperature=0.2,
)
model.compile(optimizer=keras.optimizers.Adam(2e-3))
history = model.fit(
    x_train,
    batch_size=128 if SIZE != "full" else 512,
    epochs=EPOCHS,
    callbacks=[KNNMonitor((x_train, y_train), (x_test, y_test))],
    verbose=2,
)

# %% [markdown]
# ## Reading the curves
#
# - `loss`: NT-Xent; it falls quickly and then slowly, and its floor depends on
#   the batch size and temperature, so compare it only between runs of one recipe.
# - `contrastive_accuracy`: how often a view's most similar other view is its
#   positive; a proxy task, which rises as the loss falls.
# - `embedding_std`: the standard deviation over the batch of the L2-normalised
#   projections, averaged over their dimensions (Chen & He, 2021, fig. 2). It
#   stays near 1/sqrt(d) (0.125 for these 64-d projections) while the embeddings
#   spread over the sphere and falls towards 0 when they collapse to one point,
#   the failure that negatives (or BYOL's predictor) prevent.
# - `skipped_steps`: steps whose loss was not finite and which were therefore
#   not applied (none here; `plot_history` draws it only when it is not 0).
# - `val_knn_accuracy` / `val_knn_top5_accuracy`: the held-out read-out.

# %%
plot_history(history)
plt.show()

# %% [markdown]
# ## Evaluating the representation
#
# The two standard read-outs of a frozen encoder: the weighted kNN classifier
# (no training; Wu et al. 2018) and a linear probe (a softmax layer trained on
# the standardised features; the encoder stays frozen).

# %%
knn_after = knn_evaluate(model.encoder, (x_train, y_train), (x_test, y_test))
probe = linear_probe(model.encoder, x_train, y_train, x_test, y_test, epochs=20)
print(f"held-out kNN accuracy: {100 * knn_before:.1f}% -> {100 * knn_after:.1f}%")
print(f"linear probe accuracy: {100 * probe:.1f}%")

# %% [markdown]
# The embedding of the held-out images (PCA to 2-D, coloured by the labels SimCLR
# never saw), and some held-out images with their nearest neighbours: a title is
# green where the neighbour's class matches the query's.

# %%
embeddings = compute_embeddings(model.encoder, x_test)
plot_embeddings(embeddings, y_test, class_names=CIFAR10_CLASSES, title="held-out, PCA")
plot_nearest_neighbors(
    x_test, embeddings, queries=5, k=6, labels=y_test, class_names=CIFAR10_CLASSES
)
plt.show()

# %% [markdown]
# ## Keeping the encoder
#
# The encoder is an ordinary Keras model: save it alone (`.keras`) and load it
# anywhere, on any backend, without this library's training code. The whole
# `SimCLR` model saves too (`model.save("simclr.keras")`) when you want to
# resume training.

# %%
model.encoder.save("simclr_encoder.keras")
reloaded = keras.saving.load_model("simclr_encoder.keras")
print("reloaded features:", reloaded.predict(x_test[:4], verbose=0).shape)
