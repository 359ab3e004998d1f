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
