"""Behaviour of the augmentation layers: randomness per sample, ranges, inference
passthrough, seeds, shapes and argument errors."""

import keras
import numpy as np
import pytest

from keras_contrastive.layers import (
    RandomApply,
    RandomColorDistortion,
    RandomCutout,
    RandomGaussianBlur,
    RandomGaussianNoise,
    RandomResizedCrop,
    SimCLRAugmenter,
)
from tests.layers._util import bilinear_resize_reference, to_numpy


def image_batch(rng, n=8, size=16, dtype="uint8"):
    return rng.integers(0, 256, (n, size, size, 3)).astype(dtype)


def same_image_batch(rng, n=8, size=16):
    return np.repeat(image_batch(rng, 1, size), n, axis=0)


ALL_LAYERS = {
    "crop": lambda **kw: RandomResizedCrop(12, 12, **kw),
    "color": lambda **kw: RandomColorDistortion(**kw),
    "blur": lambda **kw: RandomGaussianBlur(sigma=(0.5, 2.0), rate=1.0, **kw),
    "noise": lambda **kw: RandomGaussianNoise(**kw),
    "cutout": lambda **kw: RandomCutout(size=0.4, **kw),
    "simclr": lambda **kw: SimCLRAugmenter(12, **kw),
}


def distinct_samples(out):
    flat = out.reshape(len(out), -1)
    return len({row.tobytes() for row in np.round(flat, 3)})


@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_randomness_is_per_sample(rng, name):
    kwargs = {"jitter_rate": 1.0} if name == "color" else {}
    layer = ALL_LAYERS[name](seed=3, **kwargs)
    out = to_numpy(layer(same_image_batch(rng), training=True))
    assert distinct_samples(out) == len(out)


@pytest.mark.parametrize("name", list(ALL_LAYERS))
@pytest.mark.parametrize("value_range", [(0, 255), (-1.0, 1.0)])
def test_outputs_stay_in_value_range(rng, name, value_range):
    low, high = value_range
    images = rng.uniform(low, high, (8, 16, 16, 3)).astype("float32")
    images[0] = low  # extreme images must stay inside too
    images[1] = high
    layer = ALL_LAYERS[name](value_range=value_range, seed=0)
    out = to_numpy(layer(images, training=True))
    assert out.dtype == np.float32
    assert out.min() >= low - 1e-4 * (high - low)
    assert out.max() <= high + 1e-4 * (high - low)


@pytest.mark.parametrize("name", ["color", "blur", "noise", "cutout"])
def test_inference_is_a_passthrough(rng, name):
    images = image_batch(rng)
    out = to_numpy(ALL_LAYERS[name]()(images, training=False))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, images.astype("float32"))


def test_crop_inference_resizes_the_whole_image(rng):
    images = image_batch(rng, 2, 10)
    out = to_numpy(RandomResizedCrop(7, 13)(images, training=False))
    for b in range(2):
        expected = bilinear_resize_reference(images[b], (0, 0, 10, 10), (7, 13))
        np.testing.assert_allclose(out[b], expected, rtol=1e-5, atol=1e-3)
    same = to_numpy(RandomResizedCrop(10, 10)(images, training=False))
    np.testing.assert_array_equal(same, images.astype("float32"))


def test_simclr_inference_only_resizes(rng):
    images = image_batch(rng, 2, 16)
    out = to_numpy(SimCLRAugmenter(16)(images, training=False))
    np.testing.assert_array_equal(out, images.astype("float32"))
    assert to_numpy(SimCLRAugmenter((8, 12))(images, training=False)).shape == (
        2,
        8,
        12,
        3,
    )


def test_crop_with_unit_scale_and_ratio_is_a_plain_resize(rng):
    images = image_batch(rng, 4, 8)
    layer = RandomResizedCrop(12, 12, scale=(1.0, 1.0), ratio=(1.0, 1.0), seed=1)
    out = to_numpy(layer(images, training=True))
    for b in range(4):
        expected = bilinear_resize_reference(images[b], (0, 0, 8, 8), (12, 12))
        np.testing.assert_allclose(out[b], expected, rtol=1e-5, atol=1e-3)


def test_crop_flip_option_mirrors_some_samples(rng):
    images = same_image_batch(rng, 16, 8)
    layer = RandomResizedCrop(
        8, 8, scale=(1.0, 1.0), ratio=(1.0, 1.0), horizontal_flip=True, seed=0
    )
    out = to_numpy(layer(images, training=True))
    flipped = [np.allclose(o, images[0, :, ::-1], atol=1e-3) for o in out]
    kept = [np.allclose(o, images[0], atol=1e-3) for o in out]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 0 < sum(flipped) < 16


@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_seed_reproduces_and_calls_differ(rng, name):
    images = image_batch(rng)
    first = ALL_LAYERS[name](seed=42)
    second = ALL_LAYERS[name](seed=42)
    a1, a2 = to_numpy(first(images)), to_numpy(first(images))
    b1 = to_numpy(second(images))
    np.testing.assert_array_equal(a1, b1)
    assert not np.array_equal(a1, a2)
    other = to_numpy(ALL_LAYERS[name](seed=43)(images))
    assert not np.array_equal(a1, other)


@pytest.mark.parametrize("name", list(ALL_LAYERS))
def test_single_image_and_float64(rng, name):
    layer = ALL_LAYERS[name](seed=0)
    single = to_numpy(layer(image_batch(rng, 1)[0]))
    expected = (12, 12, 3) if name in ("crop", "simclr") else (16, 16, 3)
    assert single.shape == expected
    batch = to_numpy(layer(image_batch(rng, 2, dtype="float64")))
    assert batch.shape == (2, *expected)


def test_colour_rates(rng):
    images = image_batch(rng)
    off = RandomColorDistortion(jitter_rate=0.0, grayscale_rate=0.0, seed=0)
    np.testing.assert_allclose(to_numpy(off(images)), images, atol=1e-3)
    gray = to_numpy(RandomColorDistortion(grayscale_rate=1.0, seed=0)(images))
    np.testing.assert_allclose(gray[..., 0], gray[..., 1], atol=1e-3)
    np.testing.assert_allclose(gray[..., 0], gray[..., 2], atol=1e-3)


def test_noise_level_and_rate(rng):
    images = np.full((64, 16, 16, 3), 0.5, "float32")
    out = to_numpy(
        RandomGaussianNoise(stddev=0.1, rate=0.5, value_range=(0, 1), seed=0)(images)
    )
    stds = out.reshape(64, -1).std(axis=1)
    noisy = stds > 0.05
    assert 16 < noisy.sum() < 48
    np.testing.assert_allclose(stds[noisy], 0.1, rtol=0.1)
    np.testing.assert_array_equal(stds[~noisy], 0.0)


def test_cutout_area_fill_and_rate(rng):
    images = np.zeros((64, 20, 20, 3), "float32")
    layer = RandomCutout(size=0.5, rate=0.5, fill_value=7.0, seed=0)
    out = to_numpy(layer(images))
    filled = (out[..., 0] == 7.0).reshape(64, -1).mean(axis=1)
    assert 16 < (filled > 0).sum() < 48
    assert filled.max() <= 0.25 + 1e-6  # a 10x10 square at most
    assert np.all(out[..., 0] == out[..., 2])  # same mask on every channel
    default_fill = to_numpy(RandomCutout(size=1.0, seed=0)(images))
    assert set(np.unique(default_fill)) <= {0.0, 127.5}


def test_blur_sigma_varies_per_sample(rng):
    images = same_image_batch(rng, 16, 16).astype("float32")
    out = to_numpy(
        RandomGaussianBlur(sigma=(0.3, 3.0), kernel_size=9, rate=1.0, seed=0)(images)
    )
    # Blur shrinks the pixel variance, by a different amount for each sigma.
    variances = out.reshape(16, -1).var(axis=1)
    assert np.all(variances < images[0].var())
    assert len(np.unique(np.round(variances, 2))) == 16


def test_random_apply_selects_per_sample(rng):
    images = image_batch(rng, 32)
    gray_all = keras.layers.RandomGrayscale(factor=1.0)
    never = to_numpy(RandomApply(gray_all, rate=0.0, seed=0)(images))
    np.testing.assert_array_equal(never, images.astype("float32"))
    always = to_numpy(RandomApply(gray_all, rate=1.0, seed=0)(images))
    np.testing.assert_allclose(always[..., 0], always[..., 1], atol=1e-3)
    mixed = to_numpy(RandomApply(gray_all, rate=0.5, seed=0)(images))
    is_gray = np.all(np.abs(mixed[..., 0] - mixed[..., 1]) < 1e-3, axis=(1, 2))
    is_original = np.all(mixed == images, axis=(1, 2, 3))
    assert np.all(is_gray | is_original)
    assert 4 < is_gray.sum() < 28
    inference = to_numpy(RandomApply(gray_all, rate=1.0)(images, training=False))
    np.testing.assert_array_equal(inference, images.astype("float32"))


def test_random_apply_around_a_resizing_layer(rng):
    images = image_batch(rng, 16, 8)
    layer = RandomApply(RandomResizedCrop(6, 6, seed=1), rate=0.5, seed=2)
    out = to_numpy(layer(images))
    assert out.shape == (16, 6, 6, 3)
    resized = to_numpy(RandomResizedCrop(6, 6)(images, training=False))
    kept = np.all(np.abs(out - resized) < 1e-3, axis=(1, 2, 3))
    assert 0 < kept.sum() < 16


def test_simclr_augmenter_composes_crop_and_colour(rng):
    images = same_image_batch(rng, 64, 16)
    out = to_numpy(SimCLRAugmenter(16, color_strength=1.0, seed=0)(images))
    gray = np.all(np.abs(out[..., 0] - out[..., 1]) < 1e-3, axis=(1, 2))
    assert 3 <= gray.sum() <= 25  # grayscale_rate 0.2
    plain = SimCLRAugmenter(
        16, jitter_rate=0.0, grayscale_rate=0.0, blur=False, flip=False, seed=0
    )
    geometric = to_numpy(plain(images))
    # Without colour changes, crops interpolate the image: within its range.
    assert geometric.min() >= images.min() - 1e-3
    assert geometric.max() <= images.max() + 1e-3
    assert distinct_samples(geometric) == 64


BAD_IMAGES = [
    (np.zeros((16, 16), "float32"), "rank 4"),
    (np.zeros((2, 4, 16, 16, 3), "float32"), "rank 4"),
]


@pytest.mark.parametrize("name", list(ALL_LAYERS))
@pytest.mark.parametrize("images, message", BAD_IMAGES)
def test_bad_rank_is_rejected(name, images, message):
    with pytest.raises(ValueError, match=message):
        ALL_LAYERS[name]()(images)


@pytest.mark.parametrize("name", ["color", "simclr"])
def test_colour_layers_need_three_channels(name):
    with pytest.raises(ValueError, match="3 channels"):
        ALL_LAYERS[name]()(np.zeros((2, 16, 16, 4), "float32"))


def test_geometric_layers_accept_any_channel_count(rng):
    images = rng.uniform(0, 255, (2, 16, 16, 1)).astype("float32")
    assert to_numpy(RandomResizedCrop(8, 8)(images)).shape == (2, 8, 8, 1)
    assert to_numpy(RandomGaussianBlur()(images)).shape == (2, 16, 16, 1)


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: RandomResizedCrop(0, 8), "height"),
        (lambda: RandomResizedCrop(8, 8, scale=(0.5, 1.5)), "scale"),
        (lambda: RandomResizedCrop(8, 8, scale=0.5), "scale"),
        (lambda: RandomResizedCrop(8, 8, ratio=(0.0, 1.0)), "ratio"),
        (lambda: RandomColorDistortion(strength=-1), "strength"),
        (lambda: RandomColorDistortion(jitter_rate=1.5), "jitter_rate"),
        (lambda: RandomColorDistortion(value_range=(1, 0)), "value_range"),
        (lambda: RandomGaussianBlur(kernel_size=4), "kernel_size"),
        (lambda: RandomGaussianBlur(sigma=(2.0, 1.0)), "sigma"),
        (lambda: RandomGaussianNoise(stddev=-0.1), "stddev"),
        (lambda: RandomCutout(size=2.0), "size"),
        (lambda: RandomApply(keras.layers.RandomFlip(), rate=-0.1), "rate"),
        (lambda: SimCLRAugmenter(0), "image_size"),
        (lambda: SimCLRAugmenter(8, crop_scale=(0.0, 1.0)), "crop_scale"),
    ],
)
def test_bad_arguments_raise_value_error(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: RandomColorDistortion(seed="1"), "seed"),
        (lambda: RandomApply("not a layer"), "layer"),
        (lambda: SimCLRAugmenter(8, blur="yes"), "blur"),
    ],
)
def test_bad_argument_types_raise_type_error(factory, message):
    with pytest.raises(TypeError, match=message):
        factory()
