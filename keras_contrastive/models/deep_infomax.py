"""Deep InfoMax (Hjelm et al. 2019): local features against the global vector."""

import math

import keras
from keras import ops

from keras_contrastive import distribute
from keras_contrastive._validation import (
    check_instance,
    check_int,
    check_one_of,
    check_positive_int,
    fail,
)
from keras_contrastive.losses._common import BIG, non_finite_guard, to_float32
from keras_contrastive.models.image_model import (
    ImageContrastiveModel,
    check_image_batch,
)
from keras_contrastive.models.monitoring import embedding_std

ESTIMATORS = ("infonce", "jsd")


def _flat_locations(local):
    """(B, ..., D) -> (B, L, D): every position of the map is a location."""
    local = to_float32(local)
    dim = int(local.shape[-1])
    # The number of locations from the static shape: with `-1` TensorFlow loses it
    # when the batch size is unknown (a partial last batch in `fit`).
    locations = math.prod(int(s) for s in local.shape[1:-1])
    return ops.reshape(local, (-1, locations, dim))


def deep_infomax_scores(local, global_):
    """The critic scores T(l, g) = l . g of Deep InfoMax's local objective.

    Args:
        local: (B, ..., D) embedded local features l_{i,p}, one per location p of
            each image i (a (B, M, M, D) map or (B, L, D) rows).
        global_: (B, D) embedded global vectors g_i.

    Returns:
        `(positive, scores, own)`: `positive` (B, L) the scores l_{i,p} . g_i of
        each image's own locations; `scores` (B, C L) the scores of each g_i
        against every location of every image of the (global, every replica's)
        batch of C images, in (image, location) order; `own` (B, C L) bool, True
        on the columns of image i itself (its positives, never a negative).
    """
    local = _flat_locations(local)
    global_ = to_float32(global_)
    batch = ops.shape(local)[0]
    locations, dim = int(local.shape[1]), int(local.shape[2])
    candidates = distribute.gather(ops.reshape(local, (-1, dim)))
    scores = ops.matmul(global_, ops.transpose(candidates))
    image = ops.arange(batch, dtype="int32") + distribute.replica_offset(batch)
    column_image = ops.arange(ops.shape(candidates)[0], dtype="int32") // locations
    own = ops.equal(column_image[None, :], image[:, None])
    positive = ops.sum(local * global_[:, None, :], axis=-1)
    return positive, scores, own


def deep_infomax_loss(local, global_, estimator="infonce"):
    """Deep InfoMax's local loss: minus the mean MI estimate over locations.

    Positive pairs are (l_{i,p}, g_i), the local feature at each location p of
    image i with the global vector of the same image; the negatives of g_i are
    the local features l_{j,q} of every location q of every other image j of the
    batch (Hjelm et al. 2019, sec. 3.2 and eq. 6: the estimate averaged over
    locations). Scores are dot products T = l . g (the "encoder-and-dot-product"
    critic, the embeddings made by the caller), sp(z) = log(1 + e^z).

    - `"infonce"` (eq. 5): each (i, p) picks its positive among itself and the
      negatives of g_i,

          L_{i,p} = -log [e^{T_{ip,i}} / (e^{T_{ip,i}} + sum_{j != i, q} e^{T_{jq,i}})]
                  = sp(logsumexp_{j != i, q} T_{jq,i} - T_{ip,i}),

      and the loss is the mean over (i, p).
    - `"jsd"` (eq. 4, negated): the mean over positive pairs of sp(-T) plus the
      mean over negative pairs (i, j != i, q) of sp(T). (The paper's code adds
      the constant 2 log 2, which changes no gradient.)

    Under `tf.distribute` the candidates are every replica's local features and
    the mean is over this replica's images.

    Args:
        local: (B, ..., D) local embeddings (e.g. (B, M, M, D)).
        global_: (B, D) global embeddings.
        estimator: `"infonce"` or `"jsd"`.

    Returns:
        A float32 scalar.
    """
    check_one_of("estimator", estimator, ESTIMATORS)
    positive, scores, own = deep_infomax_scores(local, global_)
    own = ops.cast(own, "float32")
    guard = non_finite_guard(local, global_)
    if estimator == "infonce":
        negatives = ops.logsumexp(scores - own * BIG, axis=1)
        return ops.mean(ops.softplus(negatives[:, None] - positive)) + guard
    negative_pairs = ops.sum(1.0 - own)
    negative_term = ops.sum(ops.softplus(scores) * (1.0 - own)) / negative_pairs
    return ops.mean(ops.softplus(-positive)) + negative_term + guard


def deep_infomax_accuracy(local, global_):
    """Fraction of positive pairs (l_{i,p}, g_i) that g_i scores above every
    negative l_{j,q}, j != i."""
    positive, scores, own = deep_infomax_scores(local, global_)
    hardest = ops.max(scores - ops.cast(own, "float32") * BIG, axis=1)
    return ops.mean(ops.cast(positive > hardest[:, None], "float32"))


class _NearIdentity(keras.initializers.Initializer):
    """Uniform(-0.01, 0.01) with ones on the diagonal (an identity-like linear
    shortcut) when the output is at least as wide as the input, else Glorot."""

    def __call__(self, shape, dtype=None):
        rows, cols = shape
        if cols < rows:
            return keras.initializers.GlorotUniform()(shape, dtype)
        noise = keras.initializers.RandomUniform(-0.01, 0.01)(shape, dtype)
        eye = ops.eye(rows, cols, dtype=noise.dtype)
        return noise * (1.0 - eye) + eye


@keras.saving.register_keras_serializable(package="keras_contrastive")
class CriticEmbedding(keras.layers.Layer):
    """One side of Deep InfoMax's dot-product critic: an MLP over the last axis.

    x -> LayerNorm(W_2 relu(BN(W_1 x)) + b_2 + S x), S an identity-initialised
    linear shortcut (the layer norm with a learned scale and offset). On a
    (B, M, M, C) map the dense layers act on each location (1x1 convolutions),
    on a (B, C) vector they are an MLP: Hjelm et al. 2019's
    "encoder-and-dot-product" critic (appendix A.2) embeds the local features
    and the global vector with such networks and scores them by a dot product.

    Args:
        units: the hidden and output size.
        batch_norm: batch norm after the first layer.
        layer_norm: layer norm of the output.
        output_offset: whether the output has a learned offset (the layer
            norm's beta, or the last bias without layer norm). Deep InfoMax's
            local network goes without: one offset added to every local
            embedding shifts all scores of a global vector alike, which InfoNCE
            ignores (its gradient is 0 and Adam would only amplify round-off).
    """

    def __init__(
        self, units=512, batch_norm=True, layer_norm=True, output_offset=True, **kwargs
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.batch_norm = check_instance("batch_norm", batch_norm, bool, "a bool")
        self.layer_norm = check_instance("layer_norm", layer_norm, bool, "a bool")
        self.output_offset = check_instance(
            "output_offset", output_offset, bool, "a bool"
        )

    def build(self, input_shape):
        policy = self.dtype_policy
        self.hidden = keras.layers.Dense(
            self.units, use_bias=not self.batch_norm, dtype=policy
        )
        self.norm = keras.layers.BatchNormalization(dtype=policy)
        self.output_layer = keras.layers.Dense(
            self.units, use_bias=self.output_offset or self.layer_norm, dtype=policy
        )
        self.shortcut = keras.layers.Dense(
            self.units, use_bias=False, kernel_initializer=_NearIdentity(), dtype=policy
        )
        self.output_norm = keras.layers.LayerNormalization(
            center=self.output_offset, dtype=policy
        )
        self.hidden.build(input_shape)
        hidden_shape = tuple(input_shape[:-1]) + (self.units,)
        if self.batch_norm:
            self.norm.build(hidden_shape)
        self.output_layer.build(hidden_shape)
        self.shortcut.build(input_shape)
        if self.layer_norm:
            self.output_norm.build(hidden_shape)

    def call(self, x, training=False):
        h = self.hidden(x)
        if self.batch_norm:
            h = self.norm(h, training=training)
        h = self.output_layer(ops.relu(h)) + self.shortcut(x)
        return self.output_norm(h) if self.layer_norm else h

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "batch_norm": self.batch_norm,
            "layer_norm": self.layer_norm,
            "output_offset": self.output_offset,
        }


class _Untracked:
    """Holds a network that Keras and torch must not track as a sub-layer (the
    local/global view of the encoder shares the encoder's layers)."""

    def __init__(self, network):
        self.network = network


@keras.saving.register_keras_serializable(package="keras_contrastive")
class DeepInfoMax(ImageContrastiveModel):
    """Deep InfoMax (Hjelm et al. 2019, "Learning deep representations by mutual
    information estimation and maximization"), the local objective.

    The encoder E = f o C maps an image to an M x M x C feature map C(x) (the
    output of the layer `feature_layer`) and on to the global vector E(x) (the
    encoder's output). Deep InfoMax maximises the mutual information between
    E(x) and the local feature C^(p)(x) at every location p, averaged over
    locations (the paper's eq. 6): the positive pairs are (local feature at each
    location, global vector of the same image), the negatives of a global vector
    are the local features of every location of the other images of the batch.
    A learned critic scores the pairs: here the paper's "encoder-and-dot-product"
    critic, T(l, g) = phi(l) . psi(g) / sqrt(D), phi a 1x1-convolution network on
    the local map and psi an MLP on the global vector, both to D units (the
    1 / sqrt(D) keeps the first scores near unit scale, as in Bachman et al.
    2019). The MI estimate is InfoNCE (eq. 5, the default) or the Jensen-Shannon
    estimator (eq. 4); the loss is minus the estimate (`deep_infomax_loss`).

    One view per image, unaugmented by default: the positive pairs come from
    inside each image, so no augmentation is needed to make them, and the paper
    trained on the images as they are. (On 2,048 CIFAR-10 images a light
    augmentation, random crops of 50-100% and flips, gained nothing in short
    runs.) Any augmenter can be passed, e.g. `SimCLRAugmenter(size, crop_scale=
    (0.5, 1.0), color_strength=0.0, blur=False)`.

    After training, `model.encoder` is the representation (the global vector, or
    pool the local map of `model.local_and_global(images)`).

    Args:
        encoder: a functional or `Sequential` Keras model from images (as
            given, or as the augmenter returns them) to 2-D global features
            (batch, dim), with a layer whose output is the local feature map.
        feature_layer: the name (str) or index (int) of the encoder's layer whose
            output is the local feature map (batch, M, M, C) (or (batch, L, C)):
            typically an intermediate convolution block, so that the global
            vector is computed from it by further layers.
        local_network: phi, a layer from the local map (batch, ..., C) to
            (batch, ..., D). Default: `CriticEmbedding(embedding_dim,
            output_offset=False)` (1x1 convolutions with a linear shortcut and
            layer norm).
        global_network: psi, a layer from (batch, dim) to (batch, D). Default:
            `CriticEmbedding(embedding_dim)`.
        augmenter: a random augmentation of the training images. Default:
            none (`keras.layers.Identity`); the encoder sees the images as
            given.
        estimator: `"infonce"` (default) or `"jsd"`.
        embedding_dim: D of the default critic networks (the paper's 2048
            scaled down).
        **kwargs: `ContrastiveModel` arguments (`max_consecutive_skips`, `name`).

    `fit(x)` takes unlabeled image batches (uint8 or float, channels last);
    labels are ignored. Logs `loss`, `contrastive_accuracy` (the fraction of
    positive pairs scored above every negative of their global vector) and
    `embedding_std` of the critic's global embeddings (collapse monitor).

    Example:

    ```python
    import numpy as np
    import keras
    from keras_contrastive.models import DeepInfoMax

    images = np.random.randint(0, 256, (64, 16, 16, 3), dtype="uint8")
    encoder = keras.Sequential([
        keras.Input((16, 16, 3)),
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="local"),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    model = DeepInfoMax(encoder, feature_layer="local", embedding_dim=32)
    model.compile(optimizer="adam")
    model.fit(images, batch_size=16, epochs=1, verbose=0)
    features = model.encoder.predict(images, verbose=0)  # (64, 16)
    ```
    """

    nested_config = ("encoder", "local_network", "global_network", "augmenter")
    config_attributes = ("feature_layer", "estimator", "embedding_dim")
    num_views = 1

    def __init__(
        self,
        encoder,
        feature_layer,
        local_network=None,
        global_network=None,
        augmenter=None,
        estimator="infonce",
        embedding_dim=512,
        **kwargs,
    ):
        if augmenter is None:
            augmenter = keras.layers.Identity(name="no_augmentation")
        super().__init__(encoder, None, augmenter, **kwargs)
        if isinstance(feature_layer, str):
            if not feature_layer:
                fail("feature_layer", "a layer name or index", feature_layer)
        else:
            feature_layer = check_int("feature_layer", feature_layer)
        self.feature_layer = feature_layer
        self.local_network = _check_network("local_network", local_network)
        self.global_network = _check_network("global_network", global_network)
        if not isinstance(estimator, str):
            fail("estimator", f"one of {ESTIMATORS}", estimator, TypeError)
        self.estimator = check_one_of("estimator", estimator, ESTIMATORS)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self._local_global = None

    def build(self, input_shape):
        image_shape = check_image_batch(self.image_shape(input_shape))
        self.views = self.view_generator()
        images = keras.KerasTensor((2,) + image_shape[1:])
        view_shape = self.augmenter.compute_output_spec(images).shape
        view = keras.KerasTensor((2,) + tuple(view_shape[1:]))
        self.encode(view)  # builds a Sequential without an Input
        network = _local_and_global_network(self.encoder, self.feature_layer)
        self._local_global = _Untracked(network)
        local, global_ = network.compute_output_spec(view)
        if len(local.shape) not in (3, 4) or None in local.shape[1:]:
            fail(
                "feature_layer",
                "a layer whose output is a local feature map (batch, M, M, C) or "
                "(batch, L, C) of known size",
                self.feature_layer,
                detail=f"Its output has shape {tuple(local.shape)}",
            )
        self.feature_dim = int(global_.shape[-1])
        if self.local_network is None:
            self.local_network = CriticEmbedding(
                self.embedding_dim, output_offset=False, name="phi"
            )
        if self.global_network is None:
            self.global_network = CriticEmbedding(self.embedding_dim, name="psi")
        l_emb = self.local_network(local)
        g_emb = self.global_network(global_)
        if tuple(l_emb.shape[1:-1]) != tuple(local.shape[1:-1]):
            fail(
                "local_network",
                "a layer acting on each location of the map (output (batch, "
                f"{', '.join(map(str, local.shape[1:-1]))}, D))",
                tuple(l_emb.shape),
                received_as="local_network(local_map).shape",
            )
        if len(g_emb.shape) != 2 or g_emb.shape[-1] != l_emb.shape[-1]:
            fail(
                "global_network",
                f"a layer to (batch, {l_emb.shape[-1]}), the size of the local "
                "embeddings it is scored against",
                tuple(g_emb.shape),
                received_as="global_network(global_vector).shape",
            )
        self.projection_dim = int(g_emb.shape[-1])
        self.track_in_order("local_network", "global_network")
        self.built = True

    def local_and_global(self, images, training=False):
        """(local feature map C(x), global vector E(x)) of a batch, one pass."""
        return self._local_global.network(images, training=training)

    def forward_pass(self, x, training=False):
        (view,) = self.augment(x)
        local, global_ = self.local_and_global(view, training=training)
        local = self.local_network(local, training=training)
        global_ = self.global_network(global_, training=training)
        # T(l, g) = phi(l) . psi(g) / sqrt(D).
        scale = 1.0 / math.sqrt(self.projection_dim)
        return {"local": local, "global": global_ * ops.cast(scale, global_.dtype)}

    def compute_contrastive_loss(self, outputs):
        return deep_infomax_loss(outputs["local"], outputs["global"], self.estimator)

    def compute_contrastive_stats(self, outputs):
        return {
            "contrastive_accuracy": deep_infomax_accuracy(
                outputs["local"], outputs["global"]
            ),
            "embedding_std": embedding_std(outputs["global"]),
        }


def _check_network(name, value):
    if value is None:
        return None
    return check_instance(name, value, keras.layers.Layer, "a Keras layer or None")


def _local_and_global_network(encoder, feature_layer):
    """A model sharing `encoder`'s layers: images -> (feature map, encoder output)."""
    inputs = getattr(encoder, "inputs", None)
    outputs = getattr(encoder, "outputs", None)
    if not isinstance(encoder, keras.Model) or not inputs or not outputs:
        fail(
            "encoder",
            "a functional or Sequential Keras model (its layers are looked up by "
            "`feature_layer`)",
            encoder,
            TypeError,
        )
    try:
        if isinstance(feature_layer, str):
            layer = encoder.get_layer(name=feature_layer)
        else:
            layer = encoder.get_layer(index=feature_layer)
    except ValueError:
        names = [layer.name for layer in encoder.layers]
        fail(
            "feature_layer",
            f"the name or index of a layer of the encoder {encoder.name!r}",
            feature_layer,
            detail=f"Its layers: {names}",
        )
    try:
        local = layer.output
    except (AttributeError, ValueError) as error:
        fail(
            "feature_layer",
            "a layer called once in the encoder's graph",
            feature_layer,
            detail=str(error),
        )
    if len(outputs) != 1:
        fail("encoder", "a model with one output", len(outputs), received_as="outputs")
    inputs = inputs[0] if len(inputs) == 1 else inputs
    return keras.Model(inputs, [local, outputs[0]], name=f"{encoder.name}_local_global")
