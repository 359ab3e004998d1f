# %% [markdown]
# # BYOL on CIFAR-10
#
# Contrastive methods such as SimCLR and MoCo learn by telling each image's views
# apart from the views of other images: the negatives keep the representation
# from collapsing to a constant. Bootstrap Your Own Latent (BYOL; Grill et al.,
# 2020) uses no negatives at all. An *online* network learns to predict, from one
# view of an image, the representation that a *target* network gives to another
# view; the target is a slowly moving average of the online network. Nothing in
# the loss forbids the trivial solution (every image mapped to the same vector),
# yet in practice the asymmetry of a predictor on one side and a moving-average
# target on the other avoids it. This tutorial trains a small CNN with BYOL on
# CIFAR-10 and watches for that collapse.
#
# It runs as a script (`python examples/tutorials/byol.py`, a few minutes on a
# laptop CPU on the bundled 5,000-image sample) or as a notebook (jupytext). With
# `--full` it trains on the whole CIFAR-10 (downloaded by Keras) for 200 epochs.

# %%
import os
import sys

import keras
import matplotlib.pyplot as plt
import numpy as np

from keras_contrastive.callbacks import KNNMonitor, MomentumSchedule
from keras_contrastive.datasets import (
    CIFAR10_CLASSES,
    load_cifar10,
    load_cifar10_sample,
)
from keras_contrastive.evaluation import compute_embeddings, knn_evaluate, linear_probe
from keras_contrastive.layers import PredictionHead, ProjectionHead, SimCLRAugmenter
from keras_contrastive.models import BYOL
from keras_contrastive.visualization import plot_embeddings, plot_history

# "test" runs in seconds (the test suite), "docs" in minutes (the rendered page),
# "full" (--full) is the real recipe.
SIZE = "full" if "--full" in sys.argv else os.environ.get("KC_TUTORIAL_SIZE", "docs")
EPOCHS = {"test": 1, "docs": 15, "full": 200}[SIZE]
BATCH_SIZE = 128 if SIZE != "full" else 256
keras.utils.set_random_seed(0)
print(f"Keras {keras.__version__}, backend {keras.backend.backend()}, size {SIZE}")

# %% [markdown]
# ## The data
#
# The package ships 5,000 CIFAR-10 training images (500 per class) so that this
# runs offline; 1,000 of them are held out, with their labels, to score the
# representation. BYOL itself never sees a label.

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
# ## The encoder, and what a random one already does
#
# The same small CNN as in the SimCLR tutorial: three conv-batchnorm-ReLU blocks
# and global average pooling, on the images averaged down to 16x16 to keep a CPU
# run short. A randomly initialised CNN is not a useless feature extractor: its
# features already classify part of the held-out images with a weighted kNN
# (k = 200, Wu et al. 2018), and a linear probe (a softmax layer trained on the
# standardised frozen features) does better still. BYOL has to beat that, and a
# collapsed BYOL would not: it would map every image to nearly the same point.
#
# A number to keep in mind is the *spread* of the L2-normalised features: their
# standard deviation over images, averaged over feature dimensions. For vectors
# spread evenly over the unit sphere of d dimensions it is about 1/sqrt(d); for
# a collapsed representation it is 0. The random encoder's features come out of
# a ReLU and an average, so they are all positive and point in similar
# directions: their spread is already well below 1/sqrt(d).


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


def spread(features):
    """Std over images of the L2-normalised features, mean over dimensions."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    return float(unit.std(axis=0).mean())


encoder = make_encoder()
knn_before = knn_evaluate(encoder, (x_train, y_train), (x_test, y_test))
probe_before = linear_probe(encoder, x_train, y_train, x_test, y_test, epochs=20)
spread_before = spread(compute_embeddings(encoder, x_test))
print(f"random-init encoder: held-out kNN accuracy {100 * knn_before:.1f}%")
print(f"random-init encoder: linear probe accuracy {100 * probe_before:.1f}%")
print(f"feature spread {spread_before:.4f} (1/sqrt(d) = {1 / np.sqrt(128):.4f})")

# %% [markdown]
# ## The online network, the target network and the loss
#
# Each image is augmented twice (SimCLR's augmentation, CIFAR-10 setting).
#
# - The *online* network is the encoder, a projection head and a *prediction
#   head* (an MLP of the same shape on top of the projection). The optimizer
#   trains it.
# - The *target* network is a copy of the encoder and the projection head, with
#   no predictor and no gradient. After every optimizer step it moves towards the
#   online network: theta_t <- m theta_t + (1 - m) theta_online.
#
# From view a the online network predicts p_a; the target network projects view
# b to t_b. The loss is the squared distance between the normalised vectors,
# 2 - 2 cos(p_a, t_b), computed in both directions (a predicts b, b predicts a)
# and averaged, so it lies in [0, 4]. The target is under a stop-gradient: the
# loss moves only the online network towards the target, never the target
# towards the online network.
#
# BYOL raises the target's momentum from m_0 to 1 over training with a cosine
# schedule, m_k = 1 - (1 - m_0)(cos(pi k / K) + 1) / 2, for K optimizer steps:
# early on the target follows the online network quickly, at the end it is
# frozen. `MomentumSchedule(start=m_0, end=1.0)` does that; it reads K from the
# `fit` call. The paper's m_0 = 0.996 and end point 1 suit runs of many thousand
# steps. This run is a few hundred steps long: with end = 1 the target would
# hardly move in the last third of it, and the online network with it (the
# loss then flattens out). So the docs-size run anneals from 0.96 to 0.996,
# the target trailing the online network by about 1 / (1 - m) = 25 steps at
# first and 250 at the end.

# %%
MOMENTUM_START, MOMENTUM_END = (0.96, 0.996) if SIZE != "full" else (0.996, 1.0)
model = BYOL(
    encoder,
    projection_head=ProjectionHead(hidden_dims=(256,), output_dim=64),
    prediction_head=PredictionHead(hidden_dims=(256,), output_dim=64),
    augmenter=SimCLRAugmenter.cifar10(),
    momentum=MOMENTUM_START,
)
model.compile(optimizer=keras.optimizers.Adam(2e-3))
history = model.fit(
    x_train,
    batch_size=BATCH_SIZE,
    epochs=EPOCHS,
    callbacks=[
        MomentumSchedule(start=MOMENTUM_START, end=MOMENTUM_END),
        KNNMonitor((x_train, y_train), (x_test, y_test)),
    ],
    verbose=2,
)
momentum_now = float(keras.ops.convert_to_numpy(model.momentum_state.current()))
print(f"target momentum after training: {momentum_now:.4f}")

# %% [markdown]
# ## Reading the curves, and collapse
#
# - `loss`: 2 - 2 cos, averaged over both directions. Unlike a contrastive loss
#   it can reach 0, and a collapsed network reaches it trivially: a falling loss
#   says nothing on its own.
# - `contrastive_accuracy`: for each prediction, is the target of its own
#   image's other view the closest of the batch's targets? BYOL never optimises
#   this, but a representation that tells images apart gets it right.
# - `embedding_std`: the spread of the online projections (the std over the batch
#   of the normalised 64-d projections, averaged over dimensions). It is the
#   collapse detector: 1/sqrt(64) = 0.125 for projections spread over the sphere,
#   falling towards 0 if every image maps to the same point. A dimensional
#   collapse, where the projections fill only a few directions, shows as a value
#   well below 0.125 that is not 0.
# - `val_knn_accuracy` / `val_knn_top5_accuracy`: the held-out read-out, the
#   number that says whether BYOL learned something useful.

# %%
plot_history(history)
plt.show()

# %% [markdown]
# ## Against the random encoder
#
# The same two read-outs as for the random encoder, and the spread of the
# encoder's features before and after training.

# %%
knn_after = knn_evaluate(model.encoder, (x_train, y_train), (x_test, y_test))
probe = linear_probe(model.encoder, x_train, y_train, x_test, y_test, epochs=20)
embeddings = compute_embeddings(model.encoder, x_test)
print(f"held-out kNN accuracy: {100 * knn_before:.1f}% -> {100 * knn_after:.1f}%")
print(f"linear probe accuracy: {100 * probe_before:.1f}% -> {100 * probe:.1f}%")
print(f"feature spread: {spread_before:.4f} -> {spread(embeddings):.4f}")

# %% [markdown]
# Read these numbers honestly. BYOL did not collapse: `embedding_std` stayed
# close to its ideal value, the features spread out more than twice as much as
# the random encoder's, and the proxy accuracy kept rising. Both read-outs end
# several points above the random encoder's, but much of the kNN margin is the
# baseline's: the centred input (the first layer) costs the *random* encoder
# some kNN accuracy (on these images with pixels in [0, 1] instead it scores
# about 35%), while the trained encoder ends near 35% with either scaling. At
# the docs size (15 epochs on 4,000 images, a few hundred steps) BYOL's kNN
# accuracy dips in the first epoch and then climbs slowly. Without negatives,
# BYOL has only its own slowly improving target to learn from, and it is known
# to need long training (the paper trains for 300 to 1,000 epochs on ImageNet);
# the contrastive methods get a stronger signal per step. Run the full recipe
# (`--full`) before judging the method.

# %%
plot_embeddings(embeddings, y_test, class_names=CIFAR10_CLASSES, title="held-out, PCA")
plt.show()

# %% [markdown]
# ## Keeping the encoder
#
# BYOL keeps the online encoder, `model.encoder`; the target network and the
# predictor exist only for training. `model.save("byol.keras")` saves everything
# (the target network and the schedule's position included) to resume training.

# %%
model.encoder.save("byol_encoder.keras")
reloaded = keras.saving.load_model("byol_encoder.keras")
print("reloaded features:", reloaded.predict(x_test[:4], verbose=0).shape)
