# %% [markdown]
# # Fine-tuning a pretrained backbone with SimCLR
#
# Contrastive methods need not start from random weights. A network pretrained
# on ImageNet, such as the `keras.applications` models or a keras-hub
# backbone, can be adapted to unlabeled images of another domain by continuing
# its training with a contrastive objective, as in domain-adaptive
# self-supervised pretraining (Reed et al., 2022, "Self-Supervised Pretraining
# Improves Self-Supervised Pretraining"). This tutorial takes a
# `keras.applications` model, wraps it into an encoder with
# `image_backbone_encoder`, and fine-tunes it with SimCLR (Chen et al., 2020) on
# CIFAR-10 images: first the projection head alone on the frozen backbone, then
# the whole network at a lower learning rate.
#
# It runs as a script (`python examples/tutorials/pretrained_backbone.py`) or as
# a notebook (jupytext). With `--full` it loads the ImageNet weights (Keras
# downloads them once) and trains on the whole CIFAR-10.

# %%
import os
import sys

import keras
import matplotlib.pyplot as plt
import numpy as np

from keras_contrastive.datasets import load_cifar10, load_cifar10_sample
from keras_contrastive.evaluation import knn_evaluate
from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter
from keras_contrastive.models import SimCLR, image_backbone_encoder
from keras_contrastive.visualization import plot_history

# "test" runs in seconds (the test suite), "docs" in minutes (the rendered page),
# "full" (--full) is the real recipe.
SIZE = "full" if "--full" in sys.argv else os.environ.get("KC_TUTORIAL_SIZE", "docs")
HEAD_EPOCHS = {"test": 1, "docs": 1, "full": 10}[SIZE]
FINE_TUNE_EPOCHS = {"test": 1, "docs": 9, "full": 100}[SIZE]
# Only "full" downloads the ImageNet weights; the smaller sizes must run offline.
WEIGHTS = "imagenet" if SIZE == "full" else None
# Fine-tuning pretrained weights: 10x below the head's rate. Random weights
# (the smaller sizes) have nothing to protect: the head's rate.
FINE_TUNE_LR = 1e-4 if WEIGHTS else 1e-3
keras.utils.set_random_seed(0)
print(f"Keras {keras.__version__}, backend {keras.backend.backend()}, size {SIZE}")

# %% [markdown]
# ## The data
#
# The package ships 5,000 CIFAR-10 training images so that this runs offline;
# 1,000 of them are held out, with their labels, to score the representation
# with a kNN classifier. SimCLR never sees a label.

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
# ## The backbone and its preprocessing
#
# Here: MobileNet (Howard et al., 2017) with `include_top=False`, which drops
# the ImageNet classifier and returns the last feature map,
# `(batch, height, width, channels)`. Its width multiplier `alpha` scales every
# layer; 0.25 keeps a CPU run short, and ImageNet weights exist for it.
#
# Two things stand between such a backbone and a contrastive method:
#
# - **Preprocessing.** The methods augment raw images in `value_range`
#   (0, 255) inside the training step, and hand the views to the encoder in
#   that range. A pretrained backbone expects the input its weights were
#   trained on: MobileNet, like MobileNetV2, Xception and the ResNetV2s, wants
#   pixels scaled to [-1, 1] (`x / 127.5 - 1`, the "tf" mode of
#   `keras.applications.imagenet_utils`); ResNet50 and VGG want BGR images
#   minus the ImageNet mean ("caffe"); DenseNet wants ImageNet's mean and
#   standard deviation on [0, 1] ("torch"); EfficientNet, ConvNeXt, RegNet and
#   MobileNetV3 rescale (0, 255) input themselves (None). Getting this wrong
#   does not fail: the network trains, but starts far from what its weights
#   learned.
# - **Pooling.** The encoder must return `(batch, features)`, so the feature
#   map is averaged over its positions (global average pooling, as ResNet and
#   SimCLR use).
#
# `image_backbone_encoder(backbone, preprocessing="tf")` builds the Keras model
# `images in (0, 255) -> Rescaling(1 / 127.5, offset=-1) -> backbone ->
# GlobalAveragePooling2D`, with ordinary Keras layers, so it saves and loads as
# any Keras model.
#
# This page is rendered on a machine without network access, so at the "docs"
# size (and in the test suite) the backbone starts from random weights
# (`weights=None`); only `--full` loads `weights="imagenet"`. The numbers
# below therefore show the fine-tuning path working end to end, not what
# ImageNet weights give: with them, the kNN accuracy before any fine-tuning
# should already be well above the random network's. The input is CIFAR-10's
# 32x32, the smallest MobileNet accepts; ImageNet features are learned at 224x224, and a
# run for real results would upsample the images (a `keras.layers.Resizing` in
# front, e.g. `preprocessing=keras.Sequential([Resizing(128, 128),
# Rescaling(1 / 127.5, offset=-1)])` and `input_shape=(32, 32, 3)`, with a
# backbone built for 128x128 inputs).

# %%
backbone = keras.applications.MobileNet(
    input_shape=(32, 32, 3),
    alpha=0.25 if SIZE != "full" else 1.0,
    include_top=False,
    weights=WEIGHTS,
)
encoder = image_backbone_encoder(backbone, preprocessing="tf")
print([layer.name for layer in encoder.layers], encoder.output_shape)

# The encoder's preprocessing is keras.applications' own.
rescaled = keras.ops.convert_to_numpy(
    encoder.get_layer("tf_rescaling")(x_test[:8].astype("float32"))
)
reference = keras.applications.mobilenet.preprocess_input(x_test[:8].astype("float32"))
print(
    "max difference to preprocess_input:", float(np.max(np.abs(rescaled - reference)))
)

knn_before = knn_evaluate(encoder, (x_train, y_train), (x_test, y_test))
print(f"before fine-tuning: held-out kNN accuracy {100 * knn_before:.1f}%")

# %% [markdown]
# At the "docs" size that number is near chance, for a reason worth knowing: a
# network that was never trained still holds its batch normalization layers'
# initial statistics (mean 0, variance 1), which it uses in inference mode, so
# its activations fade through the layers and its features are nearly the same
# for every image. Pretrained weights carry real statistics.
#
# ## Step 1: train the head on the frozen backbone
#
# `SimCLR` adds a projection head, a freshly initialised MLP. Its first
# gradients are large and random, and passed back into a pretrained backbone
# they would damage the features before the head has learned anything
# useful. The usual recipe (as in the Keras transfer-learning guide) is
# therefore to freeze the backbone (`backbone.trainable = False`) and train the
# head first. Freezing also puts the backbone's batch normalization layers in
# inference mode, so their ImageNet statistics stay as they are. Changing
# `trainable` takes effect at the next `compile`.
#
# The augmenter is SimCLR's CIFAR-10 recipe: random resized crops, flips,
# colour distortion and grayscale, on the (0, 255) images; the encoder then
# applies MobileNet's preprocessing to every view. The encoder is unchanged by
# this step, so the kNN accuracy does not move. (At the "docs" size the frozen
# random backbone gives the head nothing to learn from: the loss stays at its
# chance value, log(2N - 1) = 5.54 for a batch of N = 128.)

# %%
model = SimCLR(
    encoder,
    projection_head=ProjectionHead(hidden_dims=(256,), output_dim=64),
    augmenter=SimCLRAugmenter.cifar10(),
    temperature=0.2,
)
backbone.trainable = False
model.compile(optimizer=keras.optimizers.Adam(1e-3))
model.fit(x_train, batch_size=128, epochs=HEAD_EPOCHS, verbose=2)

# %% [markdown]
# ## Step 2: fine-tune the whole network at a lower learning rate
#
# Unfrozen, the backbone trains with the head, at a learning rate ten times
# lower than the head's so that the pretrained weights move gradually. With
# random initial weights (the "docs" size) there is nothing to protect and a
# lower rate only slows learning down, so the smaller sizes keep the head's
# rate (`FINE_TUNE_LR`); with ImageNet weights the lower rate is what keeps
# them.
# Training also updates the batch norms' statistics, which the kNN read-out
# (in inference mode) then uses.

# %%
backbone.trainable = True
model.compile(optimizer=keras.optimizers.Adam(FINE_TUNE_LR))
history = model.fit(x_train, batch_size=128, epochs=FINE_TUNE_EPOCHS, verbose=2)
plot_history(history)
plt.show()

knn_after = knn_evaluate(model.encoder, (x_train, y_train), (x_test, y_test))
print(f"held-out kNN accuracy: {100 * knn_before:.1f}% -> {100 * knn_after:.1f}%")

# %% [markdown]
# At the "docs" size the random network barely moves: the loss stays close to
# its chance value and the kNN accuracy a point or two above chance. MobileNet is
# built for 224-pixel ImageNet images; its five stride-2 stages shrink a 32x32
# image to a single position, and from random weights a few epochs on 4,000
# images are not enough. What this page shows is the mechanics (preprocessing,
# freezing, fine-tuning, saving) running end to end; `--full`, with ImageNet
# weights, is the run to judge the method by.
#
# ## Keeping the encoder
#
# The encoder is an ordinary Functional Keras model: preprocessing, backbone
# and pooling save together to one `.keras` file, so whoever loads it feeds
# (0, 255) images and cannot forget the preprocessing. The fine-tuned backbone
# alone is its layer named after the backbone, e.g. to put a new classifier on
# it.

# %%
model.encoder.save("pretrained_backbone_encoder.keras")
reloaded = keras.saving.load_model("pretrained_backbone_encoder.keras")
same = np.allclose(
    reloaded.predict(x_test[:16], verbose=0),
    model.encoder.predict(x_test[:16], verbose=0),
    atol=1e-5,
)
print("reloaded encoder gives the same features:", same)
print("the backbone inside:", reloaded.get_layer(backbone.name).name)
