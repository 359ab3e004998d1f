"""Crop/resize, blur and cutout maths with given parameters against NumPy."""

import numpy as np
import pytest

from keras_contrastive.layers.augmentation import geometry
from tests.layers._util import bilinear_resize_reference, run


@pytest.mark.parametrize("size", [(12, 12), (5, 7), (9, 4)])
def test_crop_and_resize_matches_reference(rng, size):
    images = rng.uniform(0, 255, (3, 9, 11, 2)).astype("float32")
    boxes = np.array(
        [[0, 0, 9, 11], [1.5, 2.25, 4.0, 6.5], [3.0, 0.5, 6.0, 3.0]], "float32"
    )
    flip = np.array([False, True, False])
    out = run(
        lambda *a: geometry.crop_and_resize(*a[:2], size, a[2]), images, boxes, flip
    )
    assert out.shape == (3, *size, 2)
    for b in range(3):
        expected = bilinear_resize_reference(images[b], boxes[b], size, flip[b])
        np.testing.assert_allclose(out[b], expected, rtol=1e-5, atol=1e-3)


def test_integer_box_without_resize_is_a_plain_crop(rng):
    images = rng.uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    boxes = np.array([[2, 1, 4, 4], [0, 4, 4, 4]], "float32")
    out = run(lambda i, b: geometry.crop_and_resize(i, b, (4, 4)), images, boxes)
    np.testing.assert_allclose(out[0], images[0, 2:6, 1:5], atol=1e-6)
    np.testing.assert_allclose(out[1], images[1, 0:4, 4:8], atol=1e-6)


def test_halving_averages_two_by_two_blocks(rng):
    images = rng.uniform(0, 1, (1, 8, 8, 3)).astype("float32")
    boxes = np.array([[0, 0, 8, 8]], "float32")
    out = run(lambda i, b: geometry.crop_and_resize(i, b, (4, 4)), images, boxes)
    blocks = images[0].reshape(4, 2, 4, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(out[0], blocks, atol=1e-6)


def test_flip_mirrors_columns(rng):
    images = rng.uniform(0, 1, (1, 6, 6, 3)).astype("float32")
    boxes = np.array([[0, 0, 6, 6]], "float32")
    flip = np.array([True])
    out = run(
        lambda *a: geometry.crop_and_resize(*a[:2], (6, 6), a[2]), images, boxes, flip
    )
    np.testing.assert_allclose(out[0], images[0, :, ::-1], atol=1e-6)


def test_full_image_resize_matches_tf_image_resize(rng):
    tf = pytest.importorskip("tensorflow")
    images = rng.uniform(0, 255, (2, 7, 10, 3)).astype("float32")
    boxes = np.array([[0, 0, 7, 10]] * 2, "float32")
    out = run(lambda i, b: geometry.crop_and_resize(i, b, (15, 13)), images, boxes)
    expected = tf.image.resize(images, (15, 13), method="bilinear").numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-3)


def test_sampled_boxes_respect_scale_ratio_and_bounds(rng):
    n, attempts = 512, 10
    u = rng.uniform(0, 1, (n, 2 * attempts + 2)).astype("float32")
    scale, ratio = (0.2, 0.6), (0.5, 2.0)
    boxes = run(lambda u: geometry.sample_crop_boxes(u, 24, 32, scale, ratio), u)
    top, left, h, w = boxes.T
    assert np.all(top >= -1e-4) and np.all(left >= -1e-4)
    assert np.all(top + h <= 24 + 1e-3) and np.all(left + w <= 32 + 1e-3)
    area = h * w / (24 * 32)
    assert np.all((area >= scale[0] - 1e-4) & (area <= scale[1] + 1e-4))
    aspect = w / h
    assert np.all((aspect >= ratio[0] - 1e-4) & (aspect <= ratio[1] + 1e-4))
    # The log-aspect is uniform: about half of the boxes are wider than tall.
    assert 0.4 < np.mean(aspect > 1.0) < 0.6
    # Offsets spread over the free room (not all centred).
    assert np.std(top / np.maximum(24 - h, 1e-6)) > 0.2


def test_sampler_falls_back_to_a_centred_box_of_allowed_ratio():
    # No candidate fits: an area of 100% with a ratio far from the 4:1 image.
    u = np.zeros((2, 4), "float32")
    u[1, 2:] = 1.0
    boxes = run(
        lambda u: geometry.sample_crop_boxes(u, 10, 40, (1.0, 1.0), (1.0, 2.0), 1), u
    )
    # The whole height, width clamped to ratio 2, centred horizontally.
    np.testing.assert_allclose(boxes, [[0, 10, 10, 20], [0, 10, 10, 20]], atol=1e-4)


def _blur_reference(image, sigma, radius):
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-(taps**2) / (2 * max(sigma, 1e-6) ** 2))
    kernel /= kernel.sum()
    padded = np.pad(image, ((radius, radius), (radius, radius), (0, 0)), "reflect")
    rows = sum(
        k * padded[radius + t : radius + t + image.shape[0]]
        for t, k in zip(taps, kernel)
    )
    out = sum(
        k * rows[:, radius + t : radius + t + image.shape[1]]
        for t, k in zip(taps, kernel)
    )
    return out


def test_gaussian_blur_matches_reflect_padded_convolution(rng):
    images = rng.uniform(0, 255, (3, 9, 7, 3)).astype("float32")
    sigma = np.array([0.0, 0.8, 2.5], "float32")
    out = run(lambda i, s: geometry.gaussian_blur(i, s, 2), images, sigma)
    for b in range(3):
        expected = _blur_reference(images[b].astype(np.float64), sigma[b], 2)
        np.testing.assert_allclose(out[b], expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(out[0], images[0], atol=1e-4)  # sigma 0: unchanged


def test_cutout_mask_matches_loops():
    centers = np.array([[2.0, 3.0], [0.0, 8.0]], "float32")
    sizes = np.array([[2.0, 4.0], [3.0, 3.0]], "float32")
    mask = run(lambda c, s: geometry.cutout_mask(c, s, 6, 8), centers, sizes)
    expected = np.zeros((2, 6, 8, 1), bool)
    for b in range(2):
        for i in range(6):
            for j in range(8):
                inside_rows = abs(i + 0.5 - centers[b, 0]) < sizes[b, 0] / 2
                inside_cols = abs(j + 0.5 - centers[b, 1]) < sizes[b, 1] / 2
                expected[b, i, j, 0] = inside_rows and inside_cols
    np.testing.assert_array_equal(mask, expected)
    assert expected[0].sum() == 8 and expected[1].sum() == 1  # cut by the border


def _torchvision_get_params(rng, height, width, scale, ratio):
    """torchvision's `RandomResizedCrop.get_params`, written out: 10 candidates
    (area uniform in `scale`, log aspect ratio uniform), whole-pixel sizes and
    offsets, then the centred box of the nearest allowed ratio."""
    area = height * width
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        w = int(round(np.sqrt(target * aspect)))
        h = int(round(np.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.integers(0, height - h + 1), rng.integers(0, width - w + 1), h, w
    if width / height < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif width / height > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def _ks_statistic(a, b):
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap of the ECDFs."""
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return np.abs(cdf_a - cdf_b).max()


@pytest.mark.parametrize(
    "height, width, scale",
    [(480, 640, (0.08, 1.0)), (200, 600, (0.08, 1.0)), (300, 300, (0.5, 1.0))],
)
def test_crop_sampler_follows_torchvisions_distribution(rng, height, width, scale):
    # Large images, so that torchvision's whole-pixel rounding is negligible; a
    # 3:1 image makes the centred fallback frequent (about 10% at scale (0.08, 1)).
    n, ratio = 20_000, (3 / 4, 4 / 3)
    u = rng.uniform(0, 1, (n, 22)).astype("float32")
    ours = run(lambda u: geometry.sample_crop_boxes(u, height, width, scale, ratio), u)
    theirs = np.array(
        [_torchvision_get_params(rng, height, width, scale, ratio) for _ in range(n)],
        "float64",
    )

    def rounded(boxes):
        # Ours are continuous: rounded to whole pixels as torchvision's draws,
        # else point masses (the fallback box) sit a fraction of a pixel apart.
        return np.round(np.asarray(boxes, np.float64))

    ours, theirs = rounded(ours), rounded(theirs)
    fallback_size = _torchvision_get_params(rng, height, width, (2.0, 2.0), ratio)[2:]

    def is_fallback(boxes):
        return np.all(boxes[:, 2:] == fallback_size, axis=1)

    # The fallback's rate (a binomial proportion: 4 standard errors).
    rates = is_fallback(ours).mean(), is_fallback(theirs).mean()
    assert abs(rates[0] - rates[1]) <= 4 * np.sqrt(2 * max(rates) / n) + 1e-9, rates

    def features(boxes):
        # The centred fallback box is off by half a pixel in torchvision (it
        # floors the offset): compared above, left out here.
        top, left, h, w = boxes[~is_fallback(boxes)].T
        return {
            "area": h * w / (height * width),
            "log aspect": np.log(w / h),
            "row centre": (top + h / 2) / height,
            "column centre": (left + w / 2) / width,
        }

    # Critical value of the KS test at alpha = 0.001 for two samples of n.
    critical = 1.95 * np.sqrt(2 / n)
    for name, ours_values in features(ours).items():
        statistic = _ks_statistic(ours_values, features(theirs)[name])
        assert statistic < critical, (name, statistic, critical)
