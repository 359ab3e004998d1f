"""Zero-shot classification with an image-text model: classes as text prompts.

CLIP (Radford et al., 2021, "Learning Transferable Visual Models From Natural
Language Supervision", sec. 3.1) classifies an image without training on its
classes: each class name is written into prompt templates ("a photo of a {}."),
the text tower embeds the prompts, and the image goes to the class whose text
embedding is the most similar. Several templates per class are averaged (prompt
ensembling, sec. 3.1.4).
"""

import keras
import numpy as np
from keras import ops

from keras_contrastive._validation import (
    check_positive_int,
    check_strings,
    fail,
    shown_as,
    summarize,
)
from keras_contrastive.evaluation.arrays import to_numpy

#: CLIP's default prompt (Radford et al., 2021, sec. 3.1.4).
DEFAULT_TEMPLATES = ("a photo of a {}.",)


def _unit(x, axis=-1):
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def check_templates(templates):
    """Returns `templates` as a list of strings, each with one `{}`."""
    templates = check_strings("templates", templates)
    for i, template in enumerate(templates):
        if template.count("{}") != 1:
            fail(
                f"templates[{i}]",
                'a string with one "{}" where the class name goes',
                template,
            )
    return templates


def _check_model(model):
    for method in ("encode_text", "image_embedder"):
        if not callable(getattr(model, method, None)):
            fail(
                "model",
                "an image-text model with `encode_text` and `image_embedder` "
                "(keras_contrastive.models.CLIP)",
                summarize(model),
                TypeError,
            )
    return model


def class_embeddings(model, class_names, templates=DEFAULT_TEMPLATES, batch_size=256):
    """One L2-normalised text embedding per class (prompt ensembling).

    Every class name is written into every template (`template.replace("{}",
    name)`); the prompts are embedded with `model.encode_text` (unit rows), the
    embeddings of a class are averaged over the templates, and the mean is
    L2-normalised again (Radford et al., 2021, sec. 3.1.4).

    Args:
        model: an image-text model (`keras_contrastive.models.CLIP`).
        class_names: a non-empty list of strings.
        templates: a non-empty list of strings, each with one "{}".
        batch_size: prompts per text-tower call.

    Returns:
        float32 NumPy array `(num_classes, embed_dim)` with unit rows.
    """
    _check_model(model)
    class_names = check_strings("class_names", class_names)
    templates = check_templates(templates)
    batch_size = check_positive_int("batch_size", batch_size)
    prompts = [t.replace("{}", name) for name in class_names for t in templates]
    embeddings = np.asarray(
        model.encode_text(prompts, batch_size=batch_size, verbose=0), np.float64
    )
    embeddings = _unit(embeddings).reshape(len(class_names), len(templates), -1)
    return _unit(embeddings.mean(axis=1)).astype(np.float32)


@keras.saving.register_keras_serializable(package="keras_contrastive")
class ZeroShotClassifier(keras.Model):
    """Images -> class probabilities: softmax of scaled cosine similarities.

    p(c | x) = softmax_c(t <I(x), W_c>), with I(x) the image embedding (unit
    length), W_c the class embeddings (unit rows, `class_embeddings`) and t the
    model's logit scale (Radford et al., 2021, fig. 1 (3)). Build it with
    `zero_shot_classifier`.

    Args:
        image_embedder: a Keras model from images to L2-normalised embeddings
            (`CLIP.image_embedder()`).
        num_classes, embed_dim: the shape of the class-embedding matrix (a
            non-trainable weight, saved with the model).
        logit_scale: t, a positive float.
        class_names: optional list of the class names (kept in the config).
    """

    def __init__(
        self,
        image_embedder,
        num_classes,
        embed_dim,
        logit_scale=100.0,
        class_names=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_embedder = image_embedder
        self.num_classes = int(num_classes)
        self.embed_dim = int(embed_dim)
        self.logit_scale = float(logit_scale)
        self.class_names = None if class_names is None else list(class_names)
        self.class_weights = self.add_weight(
            shape=(self.num_classes, self.embed_dim),
            initializer="zeros",
            trainable=False,
            name="class_embeddings",
        )

    @property
    def class_embeddings(self):
        """The (num_classes, embed_dim) class embeddings, as NumPy."""
        return np.asarray(ops.convert_to_numpy(self.class_weights))

    def call(self, images, training=False):
        z = ops.cast(self.image_embedder(images, training=False), "float32")
        logits = self.logit_scale * ops.matmul(z, ops.transpose(self.class_weights))
        return ops.softmax(logits, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(
            image_embedder=keras.saving.serialize_keras_object(self.image_embedder),
            num_classes=self.num_classes,
            embed_dim=self.embed_dim,
            logit_scale=self.logit_scale,
            class_names=self.class_names,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["image_embedder"] = keras.saving.deserialize_keras_object(
            config["image_embedder"]
        )
        return cls(**config)


def zero_shot_classifier(
    model, class_names, templates=DEFAULT_TEMPLATES, batch_size=256
):
    """A Keras model from images to zero-shot class probabilities.

    The class embeddings are `class_embeddings(model, class_names, templates)`:
    every class name in every template, embedded by the text tower, averaged over
    the templates and renormalised (CLIP's prompt ensembling, Radford et al.,
    2021, sec. 3.1.4). An image's probabilities are the softmax over classes of
    its cosine similarity to each class embedding times the model's logit scale.

    Args:
        model: an image-text model (`keras_contrastive.models.CLIP`, built).
        class_names: a non-empty list of strings.
        templates: a non-empty list of strings with one "{}" each, e.g.
            `["a photo of a {}.", "a blurry photo of a {}."]`.
        batch_size: prompts per text-tower call.

    Returns:
        A `ZeroShotClassifier` (a Keras model: `predict(images)` gives
        `(N, num_classes)` probabilities; `class_embeddings` the matrix).

    Example (a tiny untrained model; the tokenizer maps words to ids):

    >>> import keras, numpy as np
    >>> from keras_contrastive.models import CLIP
    >>> words = {"a": 1, "photo": 2, "of": 3, "cat": 4, "dog": 5}
    >>> def tokenize(texts):  # word ids, padded to 6
    ...     ids = [[words.get(w.strip("."), 0) for w in t.split()] for t in texts]
    ...     return np.array([row + [0] * (6 - len(row)) for row in ids], "int32")
    >>> image_tower = keras.Sequential(
    ...     [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(8)]
    ... )
    >>> text_tower = keras.Sequential([
    ...     keras.Input((6,), dtype="int32"),
    ...     keras.layers.Embedding(6, 8),
    ...     keras.layers.GlobalAveragePooling1D(),
    ... ])
    >>> model = CLIP(image_tower, text_tower, embed_dim=4, tokenizer=tokenize)
    >>> images = np.random.default_rng(0).uniform(size=(4, 8, 8, 3))
    >>> model.build_for((images, tokenize(["a cat"] * 4)))
    >>> classifier = zero_shot_classifier(
    ...     model, ["cat", "dog"], ["a photo of a {}.", "a {}."]
    ... )
    >>> classifier.predict(images, verbose=0).shape
    (4, 2)
    >>> classifier.class_embeddings.shape
    (2, 4)
    """
    _check_model(model)
    weights = class_embeddings(model, class_names, templates, batch_size)
    scale = getattr(model, "logit_scale", 100.0)
    scale = float(to_numpy(scale)) if not isinstance(scale, float) else scale
    classifier = ZeroShotClassifier(
        model.image_embedder(),
        num_classes=weights.shape[0],
        embed_dim=weights.shape[1],
        logit_scale=scale,
        class_names=check_strings("class_names", class_names),
        name="zero_shot_classifier",
    )
    classifier.class_weights.assign(weights)
    return classifier


def zero_shot_accuracy(
    model, images, labels, class_names, templates=DEFAULT_TEMPLATES, batch_size=256
):
    """Top-1 accuracy of the zero-shot classifier on labelled images.

    Args:
        model: an image-text model (`keras_contrastive.models.CLIP`, built).
        images: array `(N, height, width, channels)`.
        labels: N integer labels, indices into `class_names`.
        class_names, templates: as in `zero_shot_classifier`.
        batch_size: images (and prompts) per network call.

    Returns:
        A Python float in [0, 1].

    Example:

    >>> import keras, numpy as np
    >>> from keras_contrastive.models import CLIP
    >>> def tokenize(texts):  # a toy tokenizer: ids from word lengths
    ...     ids = [[min(len(w), 9) for w in t.split()][:6] for t in texts]
    ...     return np.array([row + [0] * (6 - len(row)) for row in ids], "int32")
    >>> model = CLIP(
    ...     keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten()]),
    ...     keras.Sequential([
    ...         keras.Input((6,), dtype="int32"),
    ...         keras.layers.Embedding(10, 8),
    ...         keras.layers.GlobalAveragePooling1D(),
    ...     ]),
    ...     embed_dim=4,
    ...     tokenizer=tokenize,
    ... )
    >>> images = np.random.default_rng(0).uniform(size=(6, 8, 8, 3))
    >>> model.build_for((images, tokenize(["a cat"] * 6)))
    >>> accuracy = zero_shot_accuracy(
    ...     model, images, [0, 1, 0, 1, 0, 1], ["cat", "horse"], ["a {}."]
    ... )
    >>> 0.0 <= accuracy <= 1.0
    True
    """
    batch_size = check_positive_int("batch_size", batch_size)
    images = to_numpy(images)
    labels = to_numpy(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:  # Keras' (N, 1) label arrays
        labels = labels[:, 0]
    if images.ndim != 4 or images.shape[0] == 0:
        fail(
            "images.shape",
            "(num_images, height, width, channels) with at least one image",
            images.shape,
        )
    if labels.shape != (images.shape[0],):
        fail(
            "labels",
            f"one label per image ({images.shape[0]} images)",
            shown_as(f"labels of shape {labels.shape}"),
        )
    if labels.dtype.kind not in "iu":
        fail("labels.dtype", "an integer dtype", str(labels.dtype), TypeError)
    classifier = zero_shot_classifier(model, class_names, templates, batch_size)
    if labels.min() < 0 or labels.max() >= classifier.num_classes:
        fail(
            "labels",
            f"class indices in [0, {classifier.num_classes})",
            shown_as(f"indices in [{labels.min()}, {labels.max()}]"),
        )
    if np.issubdtype(images.dtype, np.integer):
        images = images.astype(np.float32)
    probabilities = classifier.predict(images, batch_size=batch_size, verbose=0)
    predicted = np.argmax(to_numpy(probabilities), axis=-1)
    return float(np.mean(predicted == labels))
