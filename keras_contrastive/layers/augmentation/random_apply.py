"""RandomApply: applies a wrapped layer to a random subset of the samples."""

import keras
import numpy as np

from keras_contrastive._validation import check_layer, check_probability, check_seed
from keras_contrastive.distribute import replica_seed
from keras_contrastive.layers.augmentation.base import (
    DataLayer,
    check_images_against_value_range,
    check_images_shape,
    clip_to_finite,
    compile_eagerly,
    run_compiled,
)


@keras.saving.register_keras_serializable(package="keras_contrastive")
class RandomApply(DataLayer):
    """Applies `layer` to each sample of a batch with probability `rate`.

    The wrapped layer runs on the whole batch (in training mode) and a per-sample
    Bernoulli draw selects, sample by sample, its output or the input. When the
    wrapped layer changes the shape (e.g. a crop to another size), the unselected
    samples get its inference output instead of the input (for `RandomResizedCrop`,
    the plain resize). In inference (`training=False`) it returns
    `layer(x, training=False)`.

    Like Keras' preprocessing layers it also runs inside `tf.data` on every backend,
    provided the wrapped layer does (Keras' image preprocessing layers and the
    layers of this package do).

    Args:
        layer: a Keras layer taking and returning image batches.
        rate: probability that a sample is transformed.
        seed: optional int for reproducible selections (the wrapped layer has its
            own seed).
        **kwargs: standard layer arguments.

    Input: `(batch, H, W, C)` images, or one `(H, W, C)` image (then all or
    nothing).

    Example:

    >>> import numpy as np
    >>> import keras
    >>> images = np.random.randint(0, 256, (4, 8, 8, 3), dtype="uint8")
    >>> layer = RandomApply(keras.layers.RandomGrayscale(factor=1.0), rate=0.5)
    >>> tuple(layer(images).shape)
    (4, 8, 8, 3)
    """

    def __init__(self, layer, rate=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.layer = check_layer("layer", layer)
        self.rate = check_probability("rate", rate)
        self.seed = check_seed("seed", seed)
        self.generator = keras.random.SeedGenerator(self.seed)

    def __call__(self, inputs, *args, **kwargs):
        # As `ImageAugmentationLayer.__call__`: a NumPy batch is checked against the
        # wrapped layer's `value_range` here (the wrapped layer sees a tensor).
        value_range = getattr(self.layer, "value_range", None)
        if isinstance(inputs, np.ndarray) and value_range is not None:
            check_images_against_value_range(inputs, value_range, "images")
        return super().__call__(inputs, *args, **kwargs)

    def call(self, images, training=True):
        b = self.backend
        images = b.core.convert_to_tensor(images)
        check_images_shape(images.shape)
        rank = len(images.shape)
        if not training:
            return self.layer(images, training=False)
        applied = self.layer(images, training=True)
        # Compare the per-sample shapes (all but the batch axis).
        sample_shape = tuple(images.shape[rank - 3 :])
        if (
            tuple(applied.shape[rank - 3 :]) == sample_shape
            and None not in sample_shape
        ):
            kept = b.core.cast(images, applied.dtype)
        else:
            kept = b.core.cast(self.layer(images, training=False), applied.dtype)
        # The kept samples are the input as it is: its +-inf clipped like the
        # wrapped layer's outputs (finite or NaN, never inf).
        dtype = keras.backend.standardize_dtype(applied.dtype)
        kept = clip_to_finite(b, kept, dtype)
        generator = self._get_seed_generator(b._backend)
        if compile_eagerly(b, applied):
            key = ("RandomApply", self.rate, self.compute_dtype)
            return run_compiled(
                self, self.select, applied, kept, generator.next(), key=key
            )
        return self.select(applied, kept, replica_seed(generator))

    def select(self, applied, kept, seed):
        """Per sample, `applied` with probability `rate`, else `kept`."""
        b = self.backend
        single = len(applied.shape) == 3
        batch = 1 if single else tuple(b.core.shape(applied))[0]
        draw = b.random.uniform((batch,), seed=seed, dtype="float32")
        select = b.numpy.reshape(
            draw < self.rate, (1, 1, 1) if single else (-1, 1, 1, 1)
        )
        return b.numpy.where(select, applied, kept)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def compute_output_spec(self, images, training=True):
        return self.layer.compute_output_spec(images, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "layer": keras.saving.serialize_keras_object(self.layer),
                "rate": self.rate,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)
