"""Per-sample geometric image maths with GIVEN parameters (crop boxes, blur sigmas).

Every function takes a batch and per-sample parameters and is deterministic, so tests
can compare it with NumPy; the layers only draw the parameters. `backend` is a Keras
backend namespace (`layer.backend` inside a layer, so the same code runs on
TensorFlow inside `tf.data`); `None` means the configured Keras backend.

Resampling is written as two per-sample matrices, one per axis, applied to channel
planes: `out[b, c] = Wy[b] @ plane[b, c] @ Wx[b]^T`. An axis-aligned crop followed by
a resize, a horizontal flip and a separable Gaussian blur are all of this form, so
each costs two batched matmuls and works for any input and output size, unlike
`keras.ops.image.affine_transform`, whose output has the input's size.
"""

import math

import keras

from keras_contrastive.layers.augmentation.base import DynamicBackend


def resolve_backend(backend=None):
    return DynamicBackend() if backend is None else backend


def _float(backend, value, dtype):
    return backend.core.cast(value, dtype)


def dtype_of(x):
    """The dtype of a tensor of any backend as a Keras dtype string."""
    return keras.backend.standardize_dtype(x.dtype)


def interpolation_matrix(
    start, length, in_size, out_size, flip=None, dtype="float32", backend=None
):
    """Bilinear resampling weights of one axis, one matrix per sample.

    Output pixel `i` (of `out_size`) samples the input axis at
    `start + (i + 0.5) * length / out_size - 0.5` (half-pixel centres, as
    `tf.image.resize` and `torch.nn.functional.interpolate(align_corners=False)`),
    clamped to the edge pixels. `[start, start + length)` is the crop interval in
    pixel-edge coordinates (the whole axis is `start=0, length=in_size`).

    Args:
        start, length: `(batch,)` float tensors.
        in_size: input axis length (int, or a scalar tensor in a TF graph).
        out_size: output axis length (int).
        flip: optional `(batch,)` bool tensor; `True` mirrors that sample's output.

    Returns:
        `(batch, out_size, in_size)` weights; each row sums to 1.
    """
    b = resolve_backend(backend)
    bnp = b.numpy
    out_index = bnp.arange(out_size, dtype=dtype)[None, :]
    if flip is not None:
        out_index = bnp.where(flip[:, None], (out_size - 1.0) - out_index, out_index)
    step = length / float(out_size)
    coord = start[:, None] + (out_index + 0.5) * step[:, None] - 0.5
    in_size_f = _float(b, in_size, dtype)
    coord = bnp.clip(coord, 0.0, in_size_f - 1.0)
    source = bnp.arange(in_size, dtype=dtype)
    # The bilinear "hat": weight 1 - distance for the two neighbouring pixels.
    return bnp.maximum(0.0, 1.0 - bnp.abs(coord[:, :, None] - source[None, None, :]))


def to_planes(images, backend=None):
    """`(batch, height, width, channels)` -> `(batch, channels, height, width)`.

    The resampling and colour maths run on channel planes: there both image axes
    are matrix axes (`rows @ plane @ cols^T`) and a colour map is one
    `(3, 3) @ (3, pixels)` product; channels-last would need a transpose or a
    tiny-inner-dimension einsum, which XLA on CPU runs ten times slower.
    """
    return resolve_backend(backend).numpy.transpose(images, (0, 3, 1, 2))


def from_planes(planes, backend=None):
    return resolve_backend(backend).numpy.transpose(planes, (0, 2, 3, 1))


def resample_planes(planes, rows, cols, backend=None):
    """`out[b, c] = rows[b] @ planes[b, c] @ cols[b]^T`.

    `planes`: `(batch, channels, in_h, in_w)`; `rows`: `(batch, out_h, in_h)`;
    `cols`: `(batch, out_w, in_w)`.
    """
    bnp = resolve_backend(backend).numpy
    x = bnp.matmul(rows[:, None, :, :], planes)
    return bnp.matmul(x, bnp.transpose(cols, (0, 2, 1))[:, None, :, :])


def crop_and_resize_planes(planes, boxes, size, flip=None, backend=None):
    """`crop_and_resize` on `(batch, channels, height, width)` planes."""
    b = resolve_backend(backend)
    dtype = dtype_of(planes)
    shape = tuple(b.core.shape(planes))
    rows = interpolation_matrix(
        boxes[:, 0], boxes[:, 2], shape[2], size[0], dtype=dtype, backend=b
    )
    cols = interpolation_matrix(
        boxes[:, 1], boxes[:, 3], shape[3], size[1], flip=flip, dtype=dtype, backend=b
    )
    return resample_planes(planes, rows, cols, backend=b)


def crop_and_resize(images, boxes, size, flip=None, backend=None):
    """Crops one box per sample and resizes it bilinearly to `size`.

    Args:
        images: `(batch, height, width, channels)` float tensor.
        boxes: `(batch, 4)` float tensor of `(top, left, box_height, box_width)` in
            pixels (edge coordinates: the whole image is `(0, 0, height, width)`).
        size: `(out_height, out_width)` ints.
        flip: optional `(batch,)` bool tensor, mirror left-right after the crop.

    Returns:
        `(batch, out_height, out_width, channels)`.
    """
    b = resolve_backend(backend)
    planes = crop_and_resize_planes(to_planes(images, b), boxes, size, flip, b)
    return from_planes(planes, b)


def sample_crop_boxes(
    uniforms,
    height,
    width,
    scale,
    ratio,
    attempts=10,
    center_fallback=True,
    backend=None,
):
    """Maps uniforms to RandomResizedCrop boxes (the torchvision / SimCLR sampler).

    For each of `attempts` candidates: area fraction ~ U(scale), log aspect ratio
    (width / height) ~ U(log ratio); the first candidate that fits inside the image
    wins; when none fits, the whole image cropped to the nearest allowed aspect
    ratio, centred. Sizes and offsets are continuous (the resize interpolates), not
    rounded to whole pixels.

    Args:
        uniforms: `(batch, 2 * attempts + 2)` floats in [0, 1): area fractions,
            log ratios, then the vertical and horizontal offset of the box.
        height, width: image size (ints or scalar tensors).
        scale, ratio: `(low, high)` pairs.

    Returns:
        `(batch, 4)` boxes `(top, left, box_height, box_width)`.
    """
    b = resolve_backend(backend)
    bnp = b.numpy
    dtype = dtype_of(uniforms)
    h_img = _float(b, height, dtype)
    w_img = _float(b, width, dtype)
    n = attempts
    area = h_img * w_img * (scale[0] + uniforms[:, :n] * (scale[1] - scale[0]))
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = bnp.exp(log_lo + uniforms[:, n : 2 * n] * (log_hi - log_lo))
    w = bnp.sqrt(area * aspect)
    h = bnp.sqrt(area / aspect)
    fits = b.core.cast(bnp.logical_and(w <= w_img, h <= h_img), dtype)
    # One-hot of the first candidate that fits (all zeros when none does).
    first = fits * b.core.cast(bnp.equal(bnp.cumsum(fits, axis=1), 1.0), dtype)
    found = bnp.sum(first, axis=1) > 0.5
    w_found = bnp.sum(first * w, axis=1)
    h_found = bnp.sum(first * h, axis=1)

    # Fallback: whole image, aspect clamped to the allowed ratio range.
    in_ratio = w_img / h_img
    too_tall = in_ratio < ratio[0]
    too_wide = in_ratio > ratio[1]
    w_fallback = bnp.where(too_wide, h_img * ratio[1], w_img)
    h_fallback = bnp.where(too_tall, w_img / ratio[0], h_img)
    ones = bnp.ones_like(w_found)
    w = bnp.where(found, w_found, w_fallback * ones)
    h = bnp.where(found, h_found, h_fallback * ones)

    top = uniforms[:, 2 * n] * (h_img - h)
    left = uniforms[:, 2 * n + 1] * (w_img - w)
    if center_fallback:
        top = bnp.where(found, top, (h_img - h) / 2.0)
        left = bnp.where(found, left, (w_img - w) / 2.0)
    return bnp.stack([top, left, h, w], axis=1)


def gaussian_kernel(sigma, radius, dtype="float32", backend=None):
    """`(batch, 2 * radius + 1)` normalised Gaussian taps, one sigma per sample."""
    b = resolve_backend(backend)
    bnp = b.numpy
    taps = bnp.arange(-radius, radius + 1, dtype=dtype)
    # A sigma of 0 means "no blur": the floor keeps the centre tap at exp(0) = 1.
    sigma = bnp.maximum(sigma, 1e-6)[:, None]
    weights = bnp.exp(-(taps[None, :] ** 2) / (2.0 * sigma**2))
    return weights / bnp.sum(weights, axis=1, keepdims=True)


def blur_matrix(kernel, size, dtype="float32", backend=None):
    """`(batch, size, size)` convolution matrix of a per-sample 1-D kernel.

    Borders are reflected without repeating the edge pixel (`[2, 1, | 0, 1, 2]`), as
    torchvision's Gaussian blur does; kernels wider than the image are clamped.
    """
    b = resolve_backend(backend)
    bnp = b.numpy
    taps = kernel.shape[1]
    radius = taps // 2
    size_f = _float(b, size, dtype)
    out_index = bnp.arange(size, dtype=dtype)[None, :]
    offsets = bnp.arange(-radius, radius + 1, dtype=dtype)[:, None]
    src = out_index + offsets  # (taps, size)
    src = bnp.where(src < 0.0, -src, src)
    src = bnp.where(src > size_f - 1.0, 2.0 * (size_f - 1.0) - src, src)
    src = bnp.clip(src, 0.0, size_f - 1.0)
    source = bnp.arange(size, dtype=dtype)
    onehot = b.core.cast(bnp.equal(src[:, :, None], source[None, None, :]), dtype)
    return bnp.einsum("bt,tij->bij", kernel, onehot)


def gaussian_blur_planes(planes, sigma, radius, backend=None):
    """`gaussian_blur` on `(batch, channels, height, width)` planes."""
    b = resolve_backend(backend)
    dtype = dtype_of(planes)
    sigma_y, sigma_x = sigma if isinstance(sigma, (tuple, list)) else (sigma, sigma)
    radius_y, radius_x = radius if isinstance(radius, (tuple, list)) else (radius,) * 2
    shape = tuple(b.core.shape(planes))
    rows = blur_matrix(
        gaussian_kernel(sigma_y, radius_y, dtype, b), shape[2], dtype, backend=b
    )
    cols = blur_matrix(
        gaussian_kernel(sigma_x, radius_x, dtype, b), shape[3], dtype, backend=b
    )
    return resample_planes(planes, rows, cols, backend=b)


def gaussian_blur(images, sigma, radius, backend=None):
    """Separable Gaussian blur with a per-sample sigma.

    Args:
        images: `(batch, height, width, channels)` float tensor.
        sigma: `(batch,)` standard deviations in pixels (0 leaves a sample as is),
            or a pair `(sigma_y, sigma_x)` of such tensors for anisotropic blur.
        radius: int or `(radius_y, radius_x)`; the kernel has `2 * radius + 1` taps.
    """
    b = resolve_backend(backend)
    planes = gaussian_blur_planes(to_planes(images, b), sigma, radius, backend=b)
    return from_planes(planes, b)


def cutout_mask(centers, sizes, height, width, dtype="float32", backend=None):
    """`(batch, height, width, 1)` bool mask of one axis-aligned rectangle per sample.

    A pixel is inside when its centre lies within `size / 2` of the rectangle's
    centre along both axes; the rectangle may extend past the border (and is then
    cut by it), as in DeVries & Taylor's Cutout.

    Args:
        centers: `(batch, 2)` (row, column) centres in pixel-edge coordinates.
        sizes: `(batch, 2)` (height, width) in pixels.
    """
    b = resolve_backend(backend)
    bnp = b.numpy
    rows = bnp.arange(height, dtype=dtype)[None, :] + 0.5
    cols = bnp.arange(width, dtype=dtype)[None, :] + 0.5
    in_rows = bnp.abs(rows - centers[:, 0:1]) < sizes[:, 0:1] / 2.0
    in_cols = bnp.abs(cols - centers[:, 1:2]) < sizes[:, 1:2] / 2.0
    mask = bnp.logical_and(in_rows[:, :, None], in_cols[:, None, :])
    return mask[:, :, :, None]


def default_blur_radius(side):
    """SimCLR's blur kernel is about 10% of the image side: `side // 10` rounded
    to the odd size `2 * radius + 1`, at least 3 taps."""
    return max(1, (side // 10) // 2)
