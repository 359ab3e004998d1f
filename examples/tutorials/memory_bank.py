# %% [markdown]
# # Instance discrimination with a memory bank on CIFAR-10
#
# Instance discrimination (Wu et al., 2018) treats every training image as a class
# of its own: the network must recognise each image, under augmentation, among
# all the others. With n images that is an n-way classification, too large to
# compute at every step, so Wu et al. keep a *memory bank*: one stored feature
# per training image, written as training goes. Each step contrasts an image's
# new feature with its own bank entry (the positive) and with a few thousand
# entries drawn at random (the negatives). The method came before SimCLR and
# MoCo, and the kNN classifier that every later paper uses to score
# representations comes from it. This tutorial trains a small CNN this way on
# CIFAR-10.
#
# It runs as a script (`python examples/tutorials/memory_bank.py`, a few minutes
# on a laptop CPU on the bundled 5,000-image sample) or as a notebook (jupytext).
# With `--full` it trains on the whole CIFAR-10 (downloaded by Keras) for 200
# epochs.

# %%
import os
import sys

import keras
import matplotlib.pyplot as plt
import numpy as np

from keras_contrastive.callbacks import KNNMonitor, MemoryBankRefresh
from keras_contrastive.datasets import (
    CIFAR10_CLASSES,
    load_cifar10,
    load_cifar10_sample,
)
from keras_contrastive.evaluation import compute_embeddings, knn_evaluate, linear_probe
from keras_contrastive.layers import SimCLRAugmenter
from keras_contrastive.models import MemoryBankModel
from keras_contrastive.visualization import plot_embeddings, plot_history

# "test" runs in seconds (the test suite), "docs" in minutes (the rendered page),
# "full" (--full) is the real recipe.
SIZE = "full" if "--full" in sys.argv else os.environ.get("KC_TUTORIAL_SIZE", "docs")
EPOCHS = {"test": 1, "docs": 30, "full": 200}[SIZE]
BATCH_SIZE = 128 if SIZE != "full" else 256
keras.utils.set_random_seed(0)
print(f"Keras {keras.__version__}, backend {keras.backend.backend()}, size {SIZE}")

# %% [markdown]
# ## The data, and the example ids
#
# The package ships 5,000 CIFAR-10 training images (500 per class) so that this
# runs offline; 1,000 of them are held out, with their labels, to score the
# representation. The method never sees a label, but it needs something SimCLR
# does not: the *id* of every image, its row in the memory bank. Here the ids are
# simply the images' positions, 0 to n - 1.

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
ids = np.arange(len(x_train))
print(
    f"train {x_train.shape} {x_train.dtype}, ids {ids.min()}..{ids.max()}, "
    f"held out {x_test.shape}"
)

# %% [markdown]
# ## The encoder and its baseline
#
# The same small CNN as in the SimCLR tutorial: three conv-batchnorm-ReLU blocks
# and global average pooling, on the images averaged down to 16x16 to keep a CPU
# run short. Its random features already classify part of the held-out images
# with the weighted kNN of Wu et al. (k = 200): the baseline to beat.


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
# ## One training step
#
# `MemoryBankModel(encoder, num_examples=n)` holds a bank of n unit vectors (random
# at first), one per id. A step on a batch of images with ids i:
#
# 1. one augmented view per image goes through the encoder and a linear head to
#    128 dimensions (Wu et al.'s head) and is L2-normalised: f_i;
# 2. the positive of f_i is its own bank entry v_i; the negatives are
#    `num_negatives` entries drawn uniformly at random from the bank (one draw
#    shared by the batch; a draw that hits the image's own entry is masked out);
# 3. the loss is InfoNCE over these similarities at temperature t (Wu et al.
#    used t = 0.07): -log exp(f_i . v_i / t) / (exp(f_i . v_i / t) + sum over
#    negatives of exp(f_i . v_k / t)); `loss="nce"` gives Wu et al.'s original
#    noise-contrastive estimate instead;
# 4. after the optimizer step the batch's entries move towards the new features,
#    v_i <- normalize(m v_i + (1 - m) f_i), with `bank_momentum` m = 0.5 (Wu et
#    al.'s proximal term; m = 0 overwrites them).
#
# The bank is never back-propagated through: it is state, like MoCo's queue, and
# it is saved with the model.
#
# ## How the ids reach the model
#
# `fit` takes the ids together with the images: `fit((ids, images))` with arrays
# (shuffling keeps each id with its image), or a dataset whose batches are
# `{"ids": ids, "images": images}` dicts. A dataset yielding bare `(ids, images)`
# pairs would be read by Keras as (inputs, labels), so the model rejects it with
# an explanation; ids outside [0, n) are rejected too.
#
# ## The refresh
#
# A bank entry is written only when its image is in a batch, once an epoch, so
# at the end of an epoch the bank holds features from encoders of every age of
# that epoch, and the negatives drawn from it are slightly stale.
# `MemoryBankRefresh((ids, images), every=E)` re-encodes every training image
# with the current networks (in inference mode, without augmentation) at the end
# of every E-th epoch and overwrites the whole bank. Here it runs every 5 epochs,
# which costs one inference pass over the training set.
#
# To see how stale the bank gets, a small callback compares, at the end of every
# epoch and before any refresh, the bank entries of the first 1,000 images with
# the features the current networks give them (without augmentation, as the
# refresh computes them), and logs the mean cosine as `bank_agreement`: 1 means
# the bank is exactly what a refresh would write.


# %%
class BankAgreement(keras.callbacks.Callback):
    """Logs the mean cos(bank entry, current feature) of 1,000 training images."""

    def on_epoch_end(self, epoch, logs=None):
        bank = keras.ops.convert_to_numpy(self.model.memory_bank.entries)[:1000]
        images = x_train[:1000].astype("float32")
        features = self.model.projection_head(
            self.model.encoder(images, training=False), training=False
        )
        features = keras.ops.convert_to_numpy(features)
        features /= np.linalg.norm(features, axis=1, keepdims=True)
        logs["bank_agreement"] = float(np.mean(np.sum(bank * features, axis=1)))


model = MemoryBankModel(
    encoder,
    num_examples=len(x_train),
    augmenter=SimCLRAugmenter.cifar10(),
    num_negatives=1024,
    temperature=0.07,
    bank_momentum=0.5,
)
model.compile(optimizer=keras.optimizers.Adam(2e-3))
history = model.fit(
    (ids, x_train),
    batch_size=BATCH_SIZE,
    epochs=EPOCHS,
    callbacks=[
        BankAgreement(),  # before the refresh: it sees the bank as training left it
        MemoryBankRefresh((ids, x_train), every=5, verbose=0),
        KNNMonitor((x_train, y_train), (x_test, y_test)),
    ],
    verbose=2,
)

# %% [markdown]
# ## Reading the curves
#
# - `loss`: InfoNCE of each feature against its entry and 1,024 random entries.
#   A guess among 1,025 candidates would cost log(1025) = 6.9. It starts well
#   above that: the bank starts as random unit vectors, so an image's positive
#   is at first a random vector, often less similar to the feature than some
#   negatives, and at t = 0.07 that costs a lot. It falls below 6.9 once the
#   entries hold real features, and then slowly as images become recognisable.
# - `contrastive_accuracy`: how often an image's own entry is the most similar of
#   the 1,025 candidates.
# - `embedding_std`: the spread of the normalised 128-d features, their std over
#   the batch averaged over dimensions: 1/sqrt(128) = 0.088 when they are spread
#   over the sphere, which instance discrimination pushes towards since every
#   image must be told apart from every other.
# - `bank_agreement`: the bank's staleness, see above. It starts near 0 (random
#   entries) and takes a few epochs to climb: each entry is written once an
#   epoch and keeps half of its previous value, so the first epochs mostly fill
#   the bank, and the loss only falls below chance once it is full. After that
#   it stays below 1: the entries are written from augmented views and mixed
#   with their previous value, so even a bank written a moment ago is not what
#   a refresh would write, and its wobble shows how much the positives and
#   negatives lag the network.
# - `skipped_steps`: steps whose loss or gradients were not finite, which the
#   model skips instead of applying (0 in a healthy run; `plot_history` draws
#   it only when it is not).
# - `val_knn_accuracy` / `val_knn_top5_accuracy`: the held-out read-out.

# %%
plot_history(history)
plt.show()

# %% [markdown]
# ## Evaluating the representation
#
# The weighted kNN classifier (no training; Wu et al. 2018) and a linear probe (a
# softmax layer trained on the standardised features, encoder frozen) read the
# encoder's features, not the 128-d projections the bank stores.

# %%
knn_after = knn_evaluate(model.encoder, (x_train, y_train), (x_test, y_test))
probe = linear_probe(model.encoder, x_train, y_train, x_test, y_test, epochs=20)
print(f"held-out kNN accuracy: {100 * knn_before:.1f}% -> {100 * knn_after:.1f}%")
print(f"linear probe accuracy: {100 * probe:.1f}%")

# %% [markdown]
# At the docs size (30 epochs on 4,000 images) this is a weak result, and the
# page says so: in the run shown here the kNN accuracy stays below the random
# encoder's for the first dozen epochs, while the bank fills, then climbs and
# ends several points above it. Much of that margin is the baseline's: the
# centred input costs the *random* encoder some kNN accuracy (with pixels in
# [0, 1] it scores about 35% on these images), while the trained encoder ends
# near 35% with either scaling. The loss is still falling when training
# stops. Each image meets its bank entry once an epoch, so instance
# discrimination learns slowly on a small data set; Wu et al. train for 200
# epochs, and the `--full` recipe does the same.

# %%
embeddings = compute_embeddings(model.encoder, x_test)
plot_embeddings(embeddings, y_test, class_names=CIFAR10_CLASSES, title="held-out, PCA")
plt.show()

# %% [markdown]
# ## Keeping the encoder
#
# The encoder is an ordinary Keras model; `model.save("memory_bank.keras")` saves
# the whole model, bank included, to resume training.

# %%
model.encoder.save("memory_bank_encoder.keras")
reloaded = keras.saving.load_model("memory_bank_encoder.keras")
print("reloaded features:", reloaded.predict(x_test[:4], verbose=0).shape)
