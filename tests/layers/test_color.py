"""Colour maths with given parameters against NumPy formulas (torchvision's
functional ops written out; hue through Python's `colorsys` HSV conversion)."""

import colorsys

import numpy as np
import pytest

from keras_contrastive.layers.augmentation import color
from tests.layers._util import run

LUMA = np.array([0.299, 0.587, 0.114])


def brightness(x, f):
    return x * f


def contrast(x, f):
    # A blend with the image's mean grey level, one scalar (torchvision).
    mean = (x @ LUMA).mean()
    return (x - mean) * f + mean


def saturation(x, f):
    gray = (x @ LUMA)[..., None]
    return gray + f * (x - gray)


def hue(x, d):
    def shift(rgb):
        h, s, v = colorsys.rgb_to_hsv(*rgb)
        return colorsys.hsv_to_rgb((h + d) % 1.0, s, v)

    return np.apply_along_axis(shift, -1, x)


NAMES = ["brightness", "contrast", "saturation", "hue"]


def reference(image, params, grayscale):
    ops = [brightness, contrast, saturation, hue]
    x = image.astype(np.float64)
    for op_index in params["order"]:
        value = params[["brightness", "contrast", "saturation", "hue"][op_index]]
        x = np.clip(ops[op_index](x, value), 0, 1)
    if grayscale:
        x = np.repeat((x @ LUMA)[..., None], 3, axis=-1)
    return x


def test_color_distort_matches_numpy_in_every_order(rng):
    n = 6
    images = rng.uniform(0, 1, (n, 5, 4, 3)).astype("float32")
    params = {
        "brightness": rng.uniform(0.5, 1.5, n).astype("float32"),
        "contrast": rng.uniform(0.5, 1.5, n).astype("float32"),
        "saturation": rng.uniform(0.0, 1.8, n).astype("float32"),
        "hue": rng.uniform(-0.3, 0.3, n).astype("float32"),
        "order": np.stack([rng.permutation(4) for _ in range(n)]).astype("int32"),
    }
    grayscale = np.array([False, True, False, False, True, False])
    names = list(params)
    out = run(
        lambda x, g, *p: color.color_distort(x, grayscale=g, **dict(zip(names, p))),
        images,
        grayscale,
        *params.values(),
    )
    for b in range(n):
        sample = {k: v[b] for k, v in params.items()}
        expected = reference(images[b], sample, grayscale[b])
        np.testing.assert_allclose(out[b], expected, atol=2e-5)


@pytest.mark.parametrize(
    "name, value, fn",
    [
        ("brightness", 1.3, brightness),
        ("contrast", 0.6, contrast),
        ("saturation", 1.7, saturation),
        ("hue", 0.2, hue),
    ],
)
def test_each_operation_alone(rng, name, value, fn):
    images = rng.uniform(0.1, 0.9, (2, 4, 4, 3)).astype("float32")
    params = {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "hue": 0.0}
    params[name] = value
    args = [np.full(2, params[k], "float32") for k in NAMES]
    order = np.array([[0, 1, 2, 3], [3, 2, 1, 0]], "int32")
    out = run(color.color_distort, images, *args, order)
    for b in range(2):
        expected = np.clip(fn(images[b].astype(np.float64), value), 0, 1)
        np.testing.assert_allclose(out[b], expected, atol=2e-5)


def test_neutral_parameters_are_identity(rng):
    images = rng.uniform(0, 1, (3, 4, 4, 3)).astype("float32")
    ones = np.ones(3, "float32")
    order = np.tile(np.arange(4, dtype="int32"), (3, 1))
    out = run(color.color_distort, images, ones, ones, ones, 0 * ones, order)
    np.testing.assert_allclose(out, images, atol=1e-5)


def test_hue_shift_is_the_hsv_hue_shift_on_real_images(rng):
    # Real pixels, grey ones and ties between the largest channels included.
    from keras_contrastive.datasets import load_cifar10_sample

    (images, _), _ = load_cifar10_sample(test_fraction=0.0)
    images = images[:8, :8, :8].astype("float32") / 255.0
    images[0, 0, 0] = 0.5
    images[1, 0, 0] = [0.2, 0.7, 0.7]
    images[2, 0, 0] = [0.7, 0.7, 0.2]
    delta = rng.uniform(-0.5, 0.5, 8).astype("float32")
    ones = np.ones(8, "float32")
    order = np.tile(np.array([3, 0, 1, 2], "int32"), (8, 1))
    out = run(color.color_distort, images, ones, ones, ones, delta, order)
    for b in range(8):
        expected = hue(images[b].astype(np.float64), float(delta[b]))
        np.testing.assert_allclose(out[b], expected, atol=2e-5)


def test_sampled_parameters_follow_simclr_ranges(rng):
    u = rng.uniform(0, 1, (2000, color.COLOR_UNIFORMS)).astype("float32")
    params = run(lambda u: color.sample_color_params(u, 0.5, 0.8, 0.2), u)
    jittered = params["hue"] != 0
    assert abs(jittered.mean() - 0.8) < 0.04
    assert abs(params["grayscale"].mean() - 0.2) < 0.04
    for name in ("brightness", "contrast", "saturation"):
        values = params[name][jittered]
        assert values.min() >= 0.6 - 1e-6 and values.max() <= 1.4 + 1e-6
        np.testing.assert_array_equal(params[name][~jittered], 1.0)
    assert np.abs(params["hue"]).max() <= 0.1 + 1e-6
    # Each row of `order` is a permutation, and all 24 orders occur.
    np.testing.assert_array_equal(
        np.sort(params["order"], axis=1), [[0, 1, 2, 3]] * 2000
    )
    assert len({tuple(row) for row in params["order"]}) == 24


def test_augmenter_under_float64_floatx():
    # The parameter draws follow keras.config.floatx(); the images may be in
    # another float type. Under float64 the views are made without a dtype
    # clash (PyTorch's einsum raised one) and are valid images; the draws
    # differ from float32's, so the views are not compared with those.
    import keras

    from keras_contrastive.layers import SimCLRAugmenter

    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), "uint8")
    views = {}
    previous = keras.config.floatx(), keras.config.dtype_policy()
    try:
        for floatx in ("float32", "float64"):
            keras.config.set_floatx(floatx)
            keras.config.set_dtype_policy(floatx)
            views[floatx] = SimCLRAugmenter((16, 16), blur=True, seed=3)(images)
    finally:
        keras.config.set_floatx(previous[0])
        keras.config.set_dtype_policy(previous[1])
    for view in views.values():
        view = keras.ops.convert_to_numpy(view)
        assert view.shape == images.shape
        assert np.isfinite(view).all() and view.min() >= 0 and view.max() <= 255
        assert np.abs(view - images).mean() > 1  # augmented, not passed through
