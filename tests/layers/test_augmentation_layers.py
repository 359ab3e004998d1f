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
from tests.layers._util import (
    OUTPUT_SIZE,
    bilinear_resize_reference,
    distinct_samples,
    image_batch,
    layer_factories,
    to_numpy,
)

FACTORIES = layer_factories()


def same_image_batch(rng, n=8, size=16):
    batch = np.repeat(image_batch(rng, 1, size), n, axis=0)
    batch[:, 0, 0] = 0  # extreme pixels must stay inside the value range
    batch[:, -1, -1] = 255
    return batch


@pytest.mark.parametrize("name", list(FACTORIES))
def test_random_per_sample_in_range_and_seeded(rng, name):
    images = same_image_batch(rng)
    layer = FACTORIES[name](seed=42)
    first, second = to_numpy(layer(images)), to_numpy(layer(images))
    size = OUTPUT_SIZE.get(name, 16)
    assert first.shape == (8, size, size, 3) and first.dtype == np.float32
    # Every sample of one batch of identical images gets its own draw...
    # (cutout masks live on the pixel grid and may coincide; RandomApply leaves
    # some samples as they are.)
    minimum = {"cutout": 6, "apply": 2}.get(name, 8)
    assert distinct_samples(first) >= minimum
    # ... inside the value range ...
    assert first.min() >= -1e-3 and first.max() <= 255 + 1e-3
    # ... and each call draws anew, reproducibly for a seed.
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(to_numpy(FACTORIES[name](seed=42)(images)), first)
    assert not np.allclose(to_numpy(FACTORIES[name](seed=43)(images)), first)


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0)])
def test_other_value_ranges(rng, value_range):
    low, high = value_range
    images = rng.uniform(low, high, (8, 16, 16, 3)).astype("float32")
    images[0], images[1] = low, high
    layer = SimCLRAugmenter(12, color_strength=1.0, value_range=value_range)
    out = to_numpy(layer(images))
    assert out.min() >= low - 1e-5 and out.max() <= high + 1e-5
    assert out.std() > 0.1 * (high - low)


@pytest.mark.parametrize("name", ["color", "blur", "noise", "cutout", "apply"])
def test_inference_is_a_passthrough(rng, name):
    images = image_batch(rng)
    out = to_numpy(FACTORIES[name]()(images, training=False))
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


def test_single_images_and_float64_batches(rng):
    # Rank-3 input is one image; the base class handles it for every layer.
    single = to_numpy(FACTORIES["crop"](seed=0)(image_batch(rng, 1)[0]))
    assert single.shape == (12, 12, 3)
    single = to_numpy(FACTORIES["noise"](seed=0)(image_batch(rng, 1)[0]))
    assert single.shape == (16, 16, 3)
    out = to_numpy(FACTORIES["simclr"](seed=0)(image_batch(rng, dtype="float64")))
    assert out.shape == (8, 12, 12, 3) and out.dtype == np.float32


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
    (np.zeros((16, 16), "float32"), r"`images.shape` must be .*\(rank 4\)"),
    (np.zeros((2, 4, 16, 16, 3), "float32"), r"Received: images.shape=\(2, 4, 16"),
]


@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("images, message", BAD_IMAGES)
def test_bad_rank_is_rejected(name, images, message):
    with pytest.raises(ValueError, match=message):
        FACTORIES[name]()(images)


@pytest.mark.parametrize("name", ["color", "simclr"])
def test_colour_layers_need_three_channels(name):
    with pytest.raises(ValueError, match=r"`images.shape` must be \(\.\.\., 3\)"):
        FACTORIES[name]()(np.zeros((2, 16, 16, 4), "float32"))


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
        (lambda: RandomColorDistortion(value_range=(1, 1)), "low < high"),
        (lambda: RandomGaussianBlur(kernel_size=4), "kernel_size"),
        (lambda: RandomGaussianBlur(sigma=(2.0, 1.0)), "sigma"),
        (lambda: RandomGaussianNoise(stddev=-0.1), "stddev"),
        (lambda: RandomCutout(size=2.0), "size"),
        (lambda: RandomApply(keras.layers.RandomFlip(), rate=-0.1), "rate"),
        (lambda: SimCLRAugmenter(0), "image_size"),
        (lambda: SimCLRAugmenter(8, crop_scale=(0.0, 1.0)), "crop_scale"),
        (lambda: SimCLRAugmenter(8, color_strength=3.0), "`color_strength` must"),
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
        (lambda: RandomResizedCrop("8", 8), "`height` must be an int >= 1"),
        (lambda: RandomColorDistortion(strength="1"), "`strength` must be"),
        (lambda: RandomGaussianBlur(kernel_size="3"), "`kernel_size` must be"),
        (lambda: RandomCutout(fill_value="0"), "`fill_value` must be"),
        (lambda: SimCLRAugmenter("32"), "`image_size` must be"),
    ],
)
def test_bad_argument_types_raise_type_error(factory, message):
    with pytest.raises(TypeError, match=message):
        factory()
