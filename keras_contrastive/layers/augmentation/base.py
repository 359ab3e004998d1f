"""The base class of our image augmentation layers.

Why a Keras-internal base: a layer used in `tf.data.Dataset.map` receives symbolic
TensorFlow tensors even when Keras runs on JAX or PyTorch, so `keras.ops` (bound to
the configured backend) cannot touch them. Keras' own preprocessing layers solve this
with `keras.src.layers.preprocessing.data_layer.DataLayer`: its `__call__` notices a
TF graph, points `self.backend` at the TensorFlow backend for that call and hands
out a TensorFlow seed generator. We subclass it (keras>=3.15) instead of copying it,
and so write every op as `self.backend.<module>.<op>` (the backend modules mirror
`keras.ops`: `numpy`, `core`, `image`, `random`). This is the only module of
`keras_contrastive.layers` that imports from `keras.src` (`DataLayer`,
`DynamicBackend` for the functional maths called outside a layer, and a JAX
tracing check); the other modules take those names from here, so if Keras moves
them only this file changes.
"""

import json

import keras
import numpy as np

try:
    from keras.src.layers.preprocessing.data_layer import DataLayer
    from keras.src.utils import jax_utils
    from keras.src.utils.backend_utils import DynamicBackend
except ImportError as error:  # a Keras release moved one of its internals
    raise ImportError(
        "keras_contrastive's image layers need Keras internals that Keras "
        f"{keras.__version__} does not have where expected ({error}). Install the "
        'Keras versions keras_contrastive supports: pip install "keras>=3.15,<3.16"'
    ) from error

from keras_contrastive._validation import check_pair, check_seed, fail
from keras_contrastive.distribute import replica_seed
from keras_contrastive.layers.augmentation.value_range import (
    check_images_against_value_range,
)

__all__ = [
    "DataLayer",
    "DynamicBackend",
    "ImageAugmentationLayer",
    "check_images_against_value_range",
]

_JAX_COMPILED = {}
_FAST_CPU_COMPILE = {"xla_backend_optimization_level": 0}


def compile_eagerly(backend, x):
    """Whether `run_compiled` compiles: eager (untraced) calls on JAX only."""
    return backend.name == "jax" and not jax_utils.is_in_jax_tracing_scope(x)


def run_compiled(layer, fn, *args, key=None):
    """Runs the pure method `fn` of `layer`, through `jax.jit` when eager on JAX.

    The one backend switch of the package, for speed only: eager JAX compiles
    each of the ~150 small ops of an augmentation separately for every new input
    shape (seconds per call), where one jit of the whole function takes a
    fraction of that. Inside a traced train step (the usual case), in `tf.data`
    and on the other backends `fn` runs as is. Layers with the same `key`
    (default: `layer.trace_key()`, the configuration without the seed) share one
    compiled function. On CPU it compiles at XLA's lowest optimisation level:
    about 3x faster to compile, about 4x slower to run on a 256x32x32 batch.
    Eager calls are for interactive use and tests; training runs inside Keras'
    own, fully optimised, compiled step.
    """
    if not compile_eagerly(layer.backend, args[0]):
        return fn(*args)
    key = (layer.trace_key() if key is None else key, fn.__name__)
    if key not in _JAX_COMPILED:
        import jax

        options = _FAST_CPU_COMPILE if jax.default_backend() == "cpu" else None
        _JAX_COMPILED[key] = jax.jit(fn, compiler_options=options)
    return _JAX_COMPILED[key](*args)


def rank_of(x):
    return len(x.shape)


def static_or_dynamic_shape(backend, x):
    """A shape tuple whose unknown entries (in a TF graph) are scalar tensors."""
    return tuple(backend.core.shape(x))


def work_dtype(compute_dtype):
    """Image maths runs in float32 at least: bfloat16 cannot hold 255 - 1e-2."""
    if compute_dtype in ("float16", "bfloat16") or "float" not in compute_dtype:
        return "float32"
    return compute_dtype


def clip_to_finite(backend, x, dtype):
    """`x` with +-inf (an inf input pixel, a float16 overflow) clipped to the
    largest finite value of `dtype`; NaN stays NaN, finite values in `dtype`'s
    range are unchanged. Outputs of the layers are finite or NaN, never inf."""
    dtype = keras.backend.standardize_dtype(dtype)
    if dtype not in _LARGEST:
        return x
    return backend.numpy.clip(x, -_LARGEST[dtype], _LARGEST[dtype])


_LARGEST = {
    "float16": float(np.finfo(np.float16).max),
    "bfloat16": 3.3895313892515355e38,
    "float32": float(np.finfo(np.float32).max),
    "float64": float(np.finfo(np.float64).max),
}


def check_value_range(name, value):
    """Returns the pixel range `(low, high)` as floats, with low < high."""
    low, high = check_pair(name, value)
    if low == high:
        fail(name, "a pair (low, high) with low < high", value)
    return (low, high)


def check_images_shape(shape, requires_rgb=False):
    """Raises unless `shape` is a channels-last image batch or single image.

    The message names no layer: Keras adds "Exception encountered when calling
    <layer>.call()".
    """
    shape = tuple(shape)
    if len(shape) not in (3, 4):
        fail(
            "images.shape",
            "(batch, height, width, channels) (rank 4) or (height, width, "
            "channels) (rank 3), channels last",
            shape,
        )
    channels = shape[-1]
    if requires_rgb and channels is not None and channels != 3:
        fail("images.shape", "(..., 3): RGB with 3 channels, channels last", shape)
    if channels is not None and channels < 1:
        fail("images.shape", "(..., channels) with at least one channel", shape)


class ImageAugmentationLayer(DataLayer):
    """Base of the image augmentation layers: checks, value range, seed, dispatch.

    Subclasses set `num_uniforms` (or override `draw(images, seeds)`, which draws
    every random number of a call) and implement the pure, deterministic
    `transform(images, params)`; they may override `passthrough(images)`
    (inference, default: identity) and `compute_output_shape`. Both receive a
    float batch `(batch, height, width, channels)` in `value_range` and the work
    dtype; `call` handles rank-3 single images, casting to the compute dtype, and
    the `training` switch.

    Args:
        value_range: `(low, high)` of the incoming and outgoing pixel values.
        seed: optional int making the random stream reproducible.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`).
    """

    #: colour layers need RGB; geometric ones accept any channel count.
    requires_rgb = False

    def __init__(self, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(**kwargs)
        self.value_range = check_value_range("value_range", value_range)
        self.seed = check_seed("seed", seed)
        # `DataLayer._get_seed_generator` expects `seed` and `generator`.
        self.generator = keras.random.SeedGenerator(self.seed)

    @property
    def work_dtype(self):
        return work_dtype(self.compute_dtype)

    def __call__(self, inputs, *args, **kwargs):
        # Called on a NumPy batch (eagerly, by hand or in a test): check the values
        # against `value_range` once here, where it costs one pass in NumPy. Tensors
        # (a train step, tf.data) are not looked at.
        if isinstance(inputs, np.ndarray):
            check_images_against_value_range(inputs, self.value_range, "images")
        return super().__call__(inputs, *args, **kwargs)

    def _check_images(self, images):
        check_images_shape(images.shape, self.requires_rgb)

    def seed_generator(self):
        """The seed generator of the backend now running (TF inside tf.data)."""
        return self._get_seed_generator(self.backend._backend)

    def call(self, images, training=True):
        backend = self.backend
        images = backend.core.convert_to_tensor(images)
        self._check_images(images)
        single = rank_of(images) == 3
        if single:
            images = backend.numpy.expand_dims(images, 0)
        x = backend.core.cast(images, self.work_dtype)
        if training:
            x = self.augment(x, self.seed_generator())
        else:
            x = run_compiled(self, self.passthrough, x)
        x = clip_to_finite(backend, x, self.compute_dtype)
        x = backend.core.cast(x, self.compute_dtype)
        if single:
            x = backend.numpy.squeeze(x, 0)
        return x

    #: columns of the `(batch, num_uniforms)` uniform draw the default `draw` makes.
    num_uniforms = None
    #: number of random ops `draw` makes (each takes one entry of `seeds`).
    num_random_ops = 1

    def draw(self, images, seeds):
        """Every random number of one call (default: one uniform matrix).

        `seeds` holds `num_random_ops` seeds for `keras.random` ops: the layer's
        seed generator, or (compiled on JAX) seed tensors drawn from it.
        """
        return self.uniform(self.batch_size(images), self.num_uniforms, seeds[0])

    def transform(self, images, params):
        """The augmentation with given random numbers (pure, no state)."""
        raise NotImplementedError

    def draw_and_transform(self, images, seeds):
        return self.transform(images, self.draw(images, seeds))

    def augment(self, images, generator):
        if compile_eagerly(self.backend, images):
            # Take the seeds out of the generator here, so the compiled function
            # is pure and the stream is the one the generator gives elsewhere.
            seeds = tuple(generator.next() for _ in range(self.num_random_ops))
            return run_compiled(self, self.draw_and_transform, images, seeds)
        # Under tf.distribute each replica draws its own numbers for its rows.
        seeds = tuple(replica_seed(generator) for _ in range(self.num_random_ops))
        return self.draw_and_transform(images, seeds)

    def passthrough(self, images):
        return images

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    # -- helpers for subclasses -------------------------------------------------

    def batch_size(self, images):
        return static_or_dynamic_shape(self.backend, images)[0]

    def uniform(self, batch_size, columns, seed):
        """One `(batch, columns)` uniform draw: every per-sample parameter of a call
        comes from one random op (fewer seed-state updates, cheaper under jit)."""
        return self.backend.random.uniform(
            (batch_size, columns), dtype=self.work_dtype, seed=seed
        )

    def to_unit(self, images):
        low, high = self.value_range
        if (low, high) == (0.0, 1.0):
            return images
        return (images - low) / (high - low)

    def from_unit(self, images):
        low, high = self.value_range
        if (low, high) == (0.0, 1.0):
            return images
        return images * (high - low) + low

    def augmentation_config(self):
        """The layer's own arguments (subclasses extend it instead of `get_config`).

        Without the seed, it is also what `transform` depends on, so it keys the
        compiled functions shared between layers (see `run_compiled`).
        """
        return {"value_range": list(self.value_range), "seed": self.seed}

    def get_config(self):
        config = super().get_config()
        config.update(self.augmentation_config())
        return config

    def trace_key(self):
        config = self.augmentation_config()
        config.pop("seed")
        config["dtype"] = self.compute_dtype
        return (type(self), json.dumps(config, sort_keys=True))
