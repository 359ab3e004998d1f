"""`check_images_against_value_range` and the layers' eager checks: images whose
values do not fit `value_range` (16-bit images under the default (0, 255), uint8
images under (0, 1), [0, 1] floats under (0, 255)) raise or warn, naming
`value_range`, instead of being clipped without a word."""

import doctest
import re
import warnings

import keras
import numpy as np
import pytest

from keras_contrastive.layers.augmentation import (
    check_images_against_value_range,
)
from keras_contrastive.layers.augmentation import (
    value_range as value_range_module,
)
from tests.layers._util import layer_factories, to_numpy

FACTORIES = layer_factories()
BACKEND = keras.backend.backend()


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(value_range_module, "_WARNED", set())


def _photo_like(rng, n=4, size=16):
    """uint8 images with a spread of values like a photograph's."""
    return np.clip(rng.normal(120, 60, (n, size, size, 3)), 0, 255).astype("uint8")


def _no_warning(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args)


def test_uint16_under_the_default_range_is_a_value_error(rng):
    images = (_photo_like(rng).astype("uint16") * 257).astype("uint16")
    message = (
        "`value_range` must be the range of the values of `x`. Received: "
        "value_range=(0.0, 255.0). `x` has dtype uint16 (16-bit images, values up "
        "to 65535)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        check_images_against_value_range(images, (0, 255))
    # Even when the values happen to be small: the dtype says 16 bits.
    with pytest.raises(ValueError, match="uint16"):
        check_images_against_value_range(images // 257, (0, 255))
    _no_warning(check_images_against_value_range, images, (0, 65535))


def test_uint8_under_unit_range_is_a_value_error(rng):
    images = _photo_like(rng)
    clipped = np.mean(images > 1)
    assert clipped > 0.5  # the finding: most pixels silently clipped
    message = (
        "`value_range` must be a range that covers the values of `images`. "
        "Received: value_range=(0.0, 1.0). "
    )
    with pytest.raises(ValueError, match=re.escape(message) + r"\d+\.\d% of the"):
        check_images_against_value_range(images, (0, 1), name="images")
    with pytest.raises(ValueError, match=r"pass value_range=\(0, 255\)"):
        check_images_against_value_range(images, (0.0, 1.0))


def test_unit_floats_under_the_default_range_warn_once(rng):
    images = _photo_like(rng).astype("float32") / 255.0
    with pytest.warns(UserWarning, match=r"`value_range`=\(0\.0, 255\.0\) but `x`"):
        check_images_against_value_range(images, (0, 255))
    _no_warning(check_images_against_value_range, images, (0, 255))  # once
    _no_warning(check_images_against_value_range, images, (0, 1))


def test_some_clipped_values_warn(rng):
    images = _photo_like(rng).astype("float32")
    images[0] = -50.0  # a quarter of the batch below the range
    with pytest.warns(UserWarning, match=r"25\.0% of the values of `x`"):
        check_images_against_value_range(images, (0, 255))


@pytest.mark.parametrize(
    "dtype, scale, value_range",
    [
        ("uint8", 1, (0, 255)),
        ("int64", 1, (0, 255)),  # NumPy's default integers holding 8-bit values
        ("float32", 1, (0, 255)),
        ("float16", 1 / 255, (0, 1)),
        ("float32", 2 / 255, (-1, 1)),
        ("uint16", 257, (0, 65535)),
    ],
)
def test_fitting_images_pass_silently(rng, dtype, scale, value_range):
    images = _photo_like(rng).astype("float64") * scale
    if value_range == (-1, 1):
        images -= 1.0
    _no_warning(check_images_against_value_range, images.astype(dtype), value_range)
    # Resampling round-off a little outside the range is not counted.
    images = images.astype("float32")
    images[0, 0, 0, 0] = value_range[1] * 1.01
    _no_warning(check_images_against_value_range, images, value_range)


def test_bad_values_and_dtypes(rng):
    images = _photo_like(rng).astype("float32")
    images[1, 2, 3, 0] = np.nan
    message = "`x` must be free of NaN and inf. Received: x=an array with 1 NaN"
    with pytest.raises(ValueError, match=re.escape(message)):
        check_images_against_value_range(images, (0, 255))
    with pytest.raises(TypeError, match=r"`x\.dtype` must be a numeric"):
        check_images_against_value_range(np.array([["a"]]), (0, 255))
    with pytest.raises(TypeError, match=r"`x\.dtype` must be a numeric"):
        check_images_against_value_range(np.ones((2, 2, 2, 3), bool), (0, 255))
    with pytest.raises(ValueError, match="value_range"):
        check_images_against_value_range(images, (1, 1))
    check_images_against_value_range(np.zeros((0, 4, 4, 3), "uint16"), (0, 255))


def test_eager_tensors_are_checked_and_large_batches_are_sampled(rng):
    images = keras.ops.convert_to_tensor(_photo_like(rng))
    with pytest.raises(ValueError, match="value_range"):
        check_images_against_value_range(images, (0, 1))
    big = np.zeros((600, 64, 64, 3), "uint8")  # 7.4M values: a sample is read
    big[::2] = 255
    _no_warning(check_images_against_value_range, big, (0, 255))
    with pytest.raises(ValueError, match="value_range"):
        check_images_against_value_range(big, (0, 1))


@pytest.mark.parametrize("name", list(FACTORIES))
def test_layers_called_on_numpy_check_their_range(rng, name):
    uint16 = (_photo_like(rng, 8).astype("uint16") * 257).astype("uint16")
    with pytest.raises(ValueError, match=r"`value_range` must be the range"):
        FACTORIES[name]()(uint16)
    uint8 = _photo_like(rng, 8)
    unit_range = FACTORIES[name]
    if name == "apply":
        from keras_contrastive.layers import RandomApply, RandomColorDistortion

        def unit_range(**kw):
            return RandomApply(RandomColorDistortion(value_range=(0, 1)), **kw)

        layer = unit_range()
    else:
        layer = unit_range(value_range=(0, 1))
    with pytest.raises(ValueError, match=r"`value_range` must be a range that"):
        layer(uint8)


def test_layers_warn_once_about_unit_floats(rng):
    layer = FACTORIES["color"](seed=0)
    images = _photo_like(rng, 8).astype("float32") / 255.0
    with pytest.warns(UserWarning, match="value_range"):
        first = to_numpy(layer(images))
    second = _no_warning(layer, images)
    assert first.shape == tuple(second.shape) == (8, 16, 16, 3)


def test_tensors_inside_a_compiled_function_are_not_checked(rng):
    """Inside a traced step the values are not visible: nothing is raised there
    (`fit` checks its first batch in Python before compiling)."""
    layer = FACTORIES["noise"](seed=0)
    images = _photo_like(rng, 8).astype("float32") * 1000
    if BACKEND == "jax":
        import jax

        out = jax.jit(lambda x: layer(x))(images)
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        out = tf.function(lambda x: layer(x))(tf.constant(images))
    else:
        out = layer(keras.ops.convert_to_tensor(images))
    assert np.all(np.isfinite(to_numpy(out)))


def test_docstring_example():
    result = doctest.testmod(value_range_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# Found by tests/test_fuzz.py: outputs are finite or NaN, never inf.


@pytest.mark.parametrize("name", list(FACTORIES))
def test_inf_pixels_never_give_inf(rng, name):
    images = _photo_like(rng, 8).astype("float32")
    images[0, 2, 3, 1] = np.inf
    images[1, 4, 4, 0] = -np.inf
    tensor = keras.ops.convert_to_tensor(images)
    for training in (True, False):
        out = to_numpy(FACTORIES[name](seed=1)(tensor, training=training))
        assert not np.any(np.isinf(out)), (name, training)


def test_an_empty_batch_gives_an_empty_batch():
    from keras_contrastive.layers import RandomColorDistortion

    out = RandomColorDistortion()(np.zeros((0, 8, 8, 3), "uint8"))
    assert tuple(out.shape) == (0, 8, 8, 3)


# Found by the 100,000-example fuzz run: a NaN bound of `value_range` was accepted,
# and colour maths on values near float32's largest overflowed to NaN.


@pytest.mark.parametrize("name", [n for n in FACTORIES if n != "apply"])  # no range
@pytest.mark.parametrize("bad", [(0, float("nan")), (float("-inf"), 255)])
def test_a_non_finite_value_range_is_refused(name, bad):
    with pytest.raises(ValueError, match="`value_range` must be a pair of finite"):
        FACTORIES[name](value_range=bad)


@pytest.mark.parametrize("name", ["color", "simclr"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_huge_finite_pixels_give_finite_colours(name, dtype):
    images = np.random.default_rng(0).uniform(1e35, 1e38, (4, 16, 16, 3))
    layer = FACTORIES[name](value_range=(0, 1), seed=1)
    out = layer(keras.ops.convert_to_tensor(images.astype("float32"), dtype=dtype))
    out = to_numpy(keras.ops.cast(out, "float32"))
    assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 1
