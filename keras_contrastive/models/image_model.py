"""`ImageContrastiveModel`: what every method on unlabeled images shares."""

import inspect

import keras
import numpy as np
from keras import ops

from keras_contrastive._validation import check_layer, check_one_of, fail
from keras_contrastive.layers import (
    MultiCrop,
    MultiView,
    PredictionHead,
    ProjectionHead,
    SimCLRAugmenter,
)
from keras_contrastive.layers.augmentation import check_images_against_value_range
from keras_contrastive.layers.multi_view import multi_view_augmenter
from keras_contrastive.models.contrastive_model import ContrastiveModel
from keras_contrastive.models.fit_data import peek_first_batch

# The `value_range` the default augmenter is given.
_DEFAULT_VALUE_RANGE = (
    inspect.signature(SimCLRAugmenter).parameters["value_range"].default
)


#: How the views of a batch meet the networks' batch norms (`map_views`).
BATCH_NORM_VIEWS = ("joint", "per_view")


def check_batch_norm_views(value):
    return check_one_of("batch_norm_views", value, BATCH_NORM_VIEWS)


def map_views(network, views, batch_norm_views="joint"):
    """`[network(view) for view in views]`, in one call or one call per view.

    `"joint"`: one call on the views concatenated along the batch, so every batch
    norm normalises all k * N images of the k views together (the SimCLR paper's
    global batch norm, which also gathers replicas). Views of different sizes
    (`MultiCrop`) cannot be concatenated: consecutive views of one size go in one
    call, as DINO's multi-resolution forward does (Caron et al. 2021). `"per_view"`:
    one call per view, so each view is normalised with its own statistics, as
    lightly, solo-learn and the BYOL code call the backbone once per view.

    A view may be a tensor or a tuple of tensors (passed to `network` as one
    argument); `network` may return a tensor or a tuple/dict of tensors, each
    with the batch first.
    """
    if batch_norm_views == "per_view":
        return [network(view) for view in views]
    results = []
    for group in _same_shape_runs(views):
        n = ops.shape(keras.tree.flatten(group[0])[0])[0]
        joint = network(
            keras.tree.map_structure(lambda *t: ops.concatenate(t, axis=0), *group)
        )
        results += [
            keras.tree.map_structure(lambda t, i=i, n=n: t[i * n : (i + 1) * n], joint)
            for i in range(len(group))
        ]
    return results


def _same_shape_runs(views):
    """`views` split into runs of consecutive views with equal static shapes."""

    def shapes(view):
        return [tuple(t.shape[1:]) for t in keras.tree.flatten(view)]

    runs = []
    for view in views:
        if runs and shapes(runs[-1][0]) == shapes(view):
            runs[-1].append(view)
        else:
            runs.append([view])
    return runs


def global_view_pairs(num_views, num_global):
    """The (i, j), i < j, view pairs a multi-view loss compares: every pair in
    which view i is global (views `0 .. num_global - 1`). Two views: [(0, 1)].

    Caron et al. 2020 (SwAV, eq. 3 summed over views) and DINO pair the views
    with the global views only; local views are never compared with each other.
    """
    return [(i, j) for i in range(num_global) for j in range(i + 1, num_views)]


def check_image_batch(shape, channels=None, name="images"):
    """Returns `shape` if it is (batch, height, width, channels[=channels])."""
    shape = tuple(shape)
    if len(shape) != 4:
        fail(
            name,
            "a batch of images of shape (batch, height, width, channels)",
            shape,
            received_as=f"{name}.shape",
        )
    if channels is not None and shape[-1] is not None and shape[-1] != channels:
        fail(
            name,
            f"images with {channels} channels (RGB, channels last)",
            shape,
            received_as=f"{name}.shape",
        )
    return shape


def check_features(features, encoder):
    """Returns `features` if `encoder` made them 2-D (batch, features)."""
    if len(features.shape) != 2:
        fail(
            "encoder",
            "a network returning 2-D (batch, features) tensors; end it with a "
            "pooling layer such as keras.layers.GlobalAveragePooling2D()",
            tuple(features.shape),
            received_as=f"{getattr(encoder, 'name', 'encoder')}(images).shape",
        )
    return features


class ImageContrastiveModel(ContrastiveModel):
    """A `ContrastiveModel` learning from unlabeled images through random views.

    It owns what image methods share, so that a method states only what differs:

    - the networks: `encoder` (images -> 2-D features), `projection_head`
      (default `default_projection_head(feature_dim)`: SimCLR's
      `ProjectionHead(hidden_dims=(dim,), output_dim=128)`) and, when the class sets
      `uses_prediction_head`, `prediction_head` (default
      `default_prediction_head(feature_dim, projection_dim)`, whose output size must
      equal the projection's: BYOL, SimSiam, NNCLR regress projections);
    - the views: `augmenter` (default a `SimCLRAugmenter` sized to the images) and
      `views`, a `MultiView` of `num_views` independent augmentations;
    - `build`: every network is built by one symbolic call on a view-shaped input,
      which sizes the default heads to the encoder; `feature_dim` and
      `projection_dim` are then known, and a method adds its own state (momentum
      copies, queues) by overriding `build` after `super().build(input_shape)`;
    - the checks: an image batch of rank 4 (RGB when the default augmenter is
      used) and an encoder returning (batch, features); before `fit` / `evaluate`
      compile, the images (arrays, or a dataset's first batch) are checked
      against the augmenter's `value_range` (`check_images_against_value_range`:
      16-bit images, or a range that would clip most pixels, are a ValueError).

    A method's `forward_pass` then reads `views = self.augment(x)`,
    `features = self.encode(view, training)`, `z = self.project(view, training)`.

    Args:
        encoder: a Keras model or layer from images (as the augmenter returns them,
            in (0, 255) by default) to 2-D features (batch, dim).
        projection_head: the MLP between features and the loss (default above).
        augmenter: the random view generator (default above).
        prediction_head: the predictor, for methods with `uses_prediction_head`.
        **kwargs: `ContrastiveModel` arguments (`gradient_cache`, `name`, ...).
    """

    nested_config = ("encoder", "projection_head", "augmenter")
    #: How many random views of each image `augment` returns (an augmenter that
    #: makes several views, `MultiCrop` or `MultiView`, says how many instead).
    num_views = 2
    #: Whether the method compares more than two views (a `MultiCrop` augmenter).
    supports_multi_view = False
    #: Whether the method has a `prediction_head` (built with the other networks).
    uses_prediction_head = False

    def __init__(
        self,
        encoder,
        projection_head=None,
        augmenter=None,
        prediction_head=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder = check_layer("encoder", encoder)
        self.projection_head = check_layer(
            "projection_head", projection_head, optional=True
        )
        self.augmenter = check_layer("augmenter", augmenter, optional=True)
        if self.uses_prediction_head:
            self.prediction_head = check_layer(
                "prediction_head", prediction_head, optional=True
            )
        elif prediction_head is not None:
            fail("prediction_head", f"None for {type(self).__name__}", prediction_head)
        self.views = None
        self.feature_dim = None
        self.projection_dim = None

    # ------------------------------------------------------------ defaults

    def default_projection_head(self, feature_dim):
        """SimCLR's head (Chen et al. 2020): one hidden layer of the feature size."""
        return ProjectionHead(hidden_dims=(feature_dim,), output_dim=128)

    def default_prediction_head(self, feature_dim, projection_dim):
        """BYOL's predictor (Grill et al. 2020): an MLP back to the projection."""
        return PredictionHead(hidden_dims=(feature_dim,), output_dim=projection_dim)

    def default_augmenter(self, image_shape):
        return SimCLRAugmenter(image_size=tuple(image_shape[1:3]))

    # ------------------------------------------------------------ checks

    def images_of(self, x):
        """The images of a model input (all of it by default)."""
        return x

    def check_fit_data(self, x):
        super().check_fit_data(x)
        if self.augmenter is None:
            value_range = _DEFAULT_VALUE_RANGE
        else:
            value_range = getattr(self.augmenter, "value_range", None)
        if value_range is None or x is None:
            return
        if not isinstance(x, (np.ndarray, dict, tuple, list)):
            x = peek_first_batch(x)  # a dataset: its first batch
            if x is None:
                return
        # Non-finite pixels are the step's to skip (see `ContrastiveModel`).
        check_images_against_value_range(
            self.images_of(x), value_range, allow_non_finite=True
        )

    # ------------------------------------------------------------ build

    def view_generator(self):
        """The layer making `augment`'s views: the augmenter itself when it makes
        several (`MultiCrop`, `MultiView`), else a `MultiView` of `num_views`
        calls of it; a ValueError naming `augmenter` if this method cannot take
        that many views."""
        views = multi_view_augmenter(self.augmenter)
        if views is None:
            return MultiView(self.augmenter, num_views=self.num_views)
        if views.num_views != self.num_views and not self.supports_multi_view:
            fail(
                "augmenter",
                f"an augmenter making {self.num_views} view(s) for "
                f"{type(self).__name__} (SimCLR and BYOL take more, e.g. MultiCrop)",
                f"{type(self.augmenter).__name__} making {views.num_views} views",
            )
        return views

    def image_shape(self, input_shape):
        """The images' part of the model input's shape (all of it by default)."""
        return tuple(input_shape)

    def build(self, input_shape):
        image_shape = check_image_batch(self.image_shape(input_shape))
        if self.augmenter is None:
            self.augmenter = self.default_augmenter(image_shape)
        self.views = self.view_generator()
        images = keras.KerasTensor((2,) + image_shape[1:])
        spec = self.augmenter.compute_output_spec(images)
        view_shape = keras.tree.flatten(spec)[0].shape
        view = keras.KerasTensor((2,) + tuple(view_shape[1:]))
        features = self.encode(view)
        self.feature_dim = int(features.shape[-1])
        if self.projection_head is None:
            self.projection_head = self.default_projection_head(self.feature_dim)
        z = self.projection_head(features, training=False)
        self.projection_dim = int(z.shape[-1])
        if self.uses_prediction_head:
            if self.prediction_head is None:
                self.prediction_head = self.default_prediction_head(
                    self.feature_dim, self.projection_dim
                )
            p = self.prediction_head(z, training=False)
            if p.shape[-1] != self.projection_dim:
                fail(
                    "prediction_head",
                    "a head whose output size equals the projection's "
                    f"({self.projection_dim}), which it regresses",
                    int(p.shape[-1]),
                    received_as="output size",
                )
        self.track_in_order("projection_head", "prediction_head")
        self.built = True

    # ------------------------------------------------------------ forward helpers

    @property
    def num_global_views(self):
        """How many of `augment`'s views are global (full size): all but
        `MultiCrop`'s local ones."""
        return self.views.num_global

    def augment(self, images):
        """`num_views` random views of a batch of images (global views first).

        The views are always random, in `evaluate` too: they are what the loss
        compares. `training` of the networks switches batch norm and dropout only.
        """
        default = isinstance(self.augmenter, (SimCLRAugmenter, MultiCrop))
        check_image_batch(images.shape, channels=3 if default else None)
        return self.views(images, training=True)

    def encode(self, images, training=False):
        """The encoder's features of a batch, checked to be (batch, features)."""
        return check_features(self.encoder(images, training=training), self.encoder)

    def project(self, images, training=False):
        """projection_head(encoder(images))."""
        return self.projection_head(self.encode(images, training), training=training)
