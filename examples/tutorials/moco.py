# %% [markdown]
# # MoCo v2 on CIFAR-10
#
# SimCLR takes its negatives from the batch, so the number of negatives is tied
# to the batch size. Momentum Contrast (MoCo; He et al., 2020) decouples them: it
# keeps the keys of past batches in a queue and contrasts each query against all
# of them. The keys come from a *momentum encoder*, a copy of the network that
# follows the trained one by an exponential moving average, so that keys written
# into the queue several steps ago are still comparable with the current ones.
# MoCo v2 (Chen et al., 2020b) adds SimCLR's MLP projection head and augmentation.
# This tutorial trains a small CNN with it on CIFAR-10 and looks inside the queue
# and the momentum encoder.
#
# It runs as a script (`python examples/tutorials/moco.py`, a few minutes on a
# laptop CPU on the bundled 5,000-image sample) or as a notebook (jupytext). With
# `--full` it trains on the whole CIFAR-10 (downloaded by Keras) for 200 epochs.

# %%
import os
import sys

import keras
import matplotlib.pyplot as plt
import numpy as np

from keras_contrastive.callbacks import KNNMonitor
from keras_contrastive.datasets import (
    CIFAR10_CLASSES,
    load_cifar10,
    load_cifar10_sample,
)
from keras_contrastive.evaluation import compute_embeddings, knn_evaluate, linear_probe
from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter
from keras_contrastive.models import MoCo
from keras_contrastive.visualization import (
    plot_embeddings,
    plot_history,
    plot_similarity_matrix,
)

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
# representation. MoCo itself never sees a label.

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
# ## The encoder and its baseline
#
# The same small CNN as in the SimCLR tutorial: three conv-batchnorm-ReLU blocks
# and global average pooling, on the images averaged down to 16x16 to keep a CPU
# run short. Its random features already classify part of the held-out images
# with a weighted kNN (k = 200, Wu et al. 2018): the baseline MoCo has to beat.


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
# ## Queries, keys and the queue
#
# Each image is augmented twice. The *query* view goes through the encoder and
# the projection head, which the optimizer trains. The *key* view goes through
# the key encoder and key head: copies of the same networks that receive no
# gradient. The loss is InfoNCE (van den Oord et al., 2018) at temperature t:
# each query must pick out its own key among the keys of the batch and the
# `queue_size` keys kept from past batches:
#
#     loss_i = -log [exp(q_i . k_i / t) / sum_k exp(q_i . k / t)],
#
# the sum running over the batch's keys and the queue.
#
# After every optimizer step two things happen, in this order:
#
# 1. the key networks move towards the trained ones by an exponential moving
#    average, theta_k <- m theta_k + (1 - m) theta_q (He et al. 2020, eq. 2);
# 2. the batch's keys are written over the oldest entries of the queue (first in,
#    first out).
#
# So the number of negatives is `queue_size + batch_size - 1`, whatever the batch
# size: the queue is how MoCo gets thousands of negatives from batches of 128.
#
# ## Why a momentum encoder, and why the queue must not be too stale
#
# A key written into the queue k steps ago was computed by the key encoder of k
# steps ago. If the key encoder were the trained encoder itself (m = 0), it would
# have changed at every step, and old keys would live in a different embedding
# space from the new queries: the loss could then tell the old negatives from the
# fresh positive by their age instead of their content. He et al. found that
# training fails with m = 0 and works best with m close to 1 (0.99 to 0.9999).
# With m close to 1 the key encoder changes slowly, so a queue that spans a few
# dozen steps holds keys of nearly one encoder.
#
# The queue must still not span too many steps for the speed at which the key
# encoder moves. A rough gauge: over the L = queue_size / batch_size steps that
# a key stays in the queue, the key encoder covers a fraction 1 - m^L of the
# distance to the online encoder. The paper's ImageNet setting (m = 0.999, a
# 65,536 queue of batches of 256: L = 256 steps) gives 23%. Our training is
# short (15 epochs of 31 steps), so the key encoder must follow faster: m = 0.99
# and a 2,048-key queue of 16 batches, a similar 15%. With m = 0.999 the key
# encoder would cover only 1 - 0.999^465 = 37% of the way over the whole run,
# and the keys would come from a network that barely learned.

# %%
QUEUE_SIZE = 2048 if SIZE != "full" else 16384
MOMENTUM = 0.99
steps_in_queue = QUEUE_SIZE / BATCH_SIZE
print(
    f"queue: {QUEUE_SIZE} keys, the last {steps_in_queue:.0f} batches of {BATCH_SIZE}"
)
print(
    f"momentum m = {MOMENTUM}: the key encoder moves 1 - m^L = "
    f"{100 * (1 - MOMENTUM**steps_in_queue):.0f}% of the way while a key is queued"
)

# %% [markdown]
# ## Training with `model.fit`
#
# `MoCo` takes the encoder, a projection head (MoCo v2: an MLP), the augmenter
# (MoCo v2 uses SimCLR's; this is its CIFAR-10 setting) and the queue length,
# momentum and temperature (0.2 in MoCo v2). It builds the key networks, the
# queue (filled with random unit vectors at first) and the momentum state
# itself. `fit` takes the raw images. The momentum is constant here, as in MoCo;
# `keras_contrastive.callbacks.MomentumSchedule` can raise it during training
# (BYOL's cosine schedule, see the BYOL tutorial). `KNNMonitor` scores the
# encoder on the held-out images after every epoch.

# %%
model = MoCo(
    encoder,
    projection_head=ProjectionHead(hidden_dims=(128,), output_dim=64),
    augmenter=SimCLRAugmenter.cifar10(),
    queue_size=QUEUE_SIZE,
    momentum=MOMENTUM,
    temperature=0.2,
)
model.compile(optimizer=keras.optimizers.Adam(2e-3))
history = model.fit(
    x_train,
    batch_size=BATCH_SIZE,
    epochs=EPOCHS,
    callbacks=[KNNMonitor((x_train, y_train), (x_test, y_test))],
    verbose=2,
)

# %% [markdown]
# ## Reading the curves
#
# - `loss`: InfoNCE over the batch and the queue. It starts near
#   log(queue_size + batch_size) (every key as likely as another) and falls as
#   queries find their keys. In the first steps the queue holds random vectors,
#   which are easy negatives; after L steps it holds real keys.
# - `contrastive_accuracy`: how often a query's own key is the most similar of
#   all the batch's keys and the queue's: a proxy task.
# - `embedding_std`: the standard deviation of the L2-normalised query
#   projections over the batch, averaged over dimensions: about 1/sqrt(64) =
#   0.125 for projections spread over the sphere, 0 if they all collapse to one
#   point.
# - `skipped_steps`: steps whose loss or gradients were not finite, which the
#   model skips instead of applying (0 in a healthy run; `plot_history` draws
#   it only when it is not).
# - `val_knn_accuracy` / `val_knn_top5_accuracy`: the held-out read-out. It can
#   dip below the random-init baseline in the first epoch, while the queue still
#   holds random vectors and the features reorganise, before it climbs. A run
#   this short ends well above the random encoder but far from what MoCo can
#   reach: its loss is still far from its floor, and the published recipe
#   trains for hundreds of epochs.

# %%
plot_history(history)
plt.show()

# %% [markdown]
# ## Inside the queue and the key encoder
#
# After training, the queue holds the keys of the last L batches, and its pointer
# says where the next batch will be written (the oldest entry). Every entry is a
# unit vector of the projection space. How far behind is the key encoder? Embed
# the held-out images (without augmentation) with the trained networks and with
# the key networks, and compare image by image: the cosine between the two is
# close to 1, so keys are comparable with queries. The similarity matrix of 40
# queries (rows) against the keys of the same images (columns) shows the bright
# diagonal the loss asks for: each query is closest to its own image's key.

# %%
queue = keras.ops.convert_to_numpy(model.queue.keys)
pointer = int(keras.ops.convert_to_numpy(model.queue.pointer))
norms = np.linalg.norm(queue, axis=1)
print(
    f"queue {queue.shape}, next write at row {pointer}, "
    f"norms {norms.min():.3f}..{norms.max():.3f}"
)


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def project(encoder, head, images):
    features = encoder(images.astype("float32"), training=False)
    return unit(keras.ops.convert_to_numpy(head(features, training=False)))


queries = project(model.encoder, model.projection_head, x_test[:256])
keys = project(model.key_encoder, model.key_head, x_test[:256])
same = np.mean(np.sum(queries * keys, axis=1))
print(f"cos(query, key), same image: mean {same:.3f}")
print(f"cos(query, key), all pairs: mean {np.mean(queries @ keys.T):.3f}")
plot_similarity_matrix(queries[:40], keys[:40], xlabel="keys", ylabel="queries")
plt.show()

# %% [markdown]
# ## Evaluating the representation
#
# The two standard read-outs of a frozen encoder: the weighted kNN classifier
# (no training; Wu et al. 2018) and a linear probe (a softmax layer trained on
# the standardised features). MoCo keeps the query encoder, `model.encoder`; the
# key encoder is a by-product of training.

# %%
knn_after = knn_evaluate(model.encoder, (x_train, y_train), (x_test, y_test))
probe = linear_probe(model.encoder, x_train, y_train, x_test, y_test, epochs=20)
print(f"held-out kNN accuracy: {100 * knn_before:.1f}% -> {100 * knn_after:.1f}%")
print(f"linear probe accuracy: {100 * probe:.1f}%")

# %%
embeddings = compute_embeddings(model.encoder, x_test)
plot_embeddings(embeddings, y_test, class_names=CIFAR10_CLASSES, title="held-out, PCA")
plt.show()

# %% [markdown]
# ## Going further
#
# - `MoCo(..., symmetric=True)` contrasts both directions (view 1 against view 2's
#   key and view 2 against view 1's), as MoCo v3 (Chen, Xie and He, 2021) does.
# - `batch_norm_groups=G` encodes queries and keys in G groups, the keys in a
#   shuffled order, so a query and its key rarely share batch-norm statistics: the
#   single-device form of MoCo's shuffled batch norm (He et al. 2020, sec. 3.3).
# - `hard_negative_mixing=MoCHi(...)` adds synthetic hard negatives mixed from the
#   queue (Kalantidis et al., 2020).
#
# The queue, its pointer, the key networks and the momentum state are model
# variables: `model.save("moco.keras")` and `keras.callbacks.BackupAndRestore`
# resume training where it stopped. The encoder alone saves as any Keras model.

# %%
model.encoder.save("moco_encoder.keras")
reloaded = keras.saving.load_model("moco_encoder.keras")
print("reloaded features:", reloaded.predict(x_test[:4], verbose=0).shape)
