"""Per-sample colour maths with GIVEN parameters, on images scaled to [0, 1].

SimCLR's colour distortion (appendix A of Chen et al. 2020) is brightness, contrast,
saturation and hue jitter in a random order, each followed by clipping, then random
grayscale; the formulas are torchvision's functional ops (`adjust_brightness`,
`adjust_contrast`, `adjust_saturation`, `adjust_hue`, `rgb_to_grayscale`), which
lightly and solo-learn use. Three of the four jitters and grayscale are per-pixel
affine maps of the RGB vector `rgb -> M @ rgb + v`, with a per-sample 3x3 matrix:

- brightness `f`: `M = f I` (a blend with black);
- contrast `f`: `M = f I`, `v = (1 - f) * mean(luma)`, a blend with the mean
  grey level of the image (one scalar per image, as torchvision; SimCLR's
  TensorFlow code uses the per-channel means instead);
- saturation `f`: blend with the luma image, `M = f I + (1 - f) 1 l^T` with the
  BT.601 luma weights `l`;
- grayscale: `M = 1 l^T`.

Hue `d` (a fraction of a full turn) is not linear: the shift of the H channel of
HSV, `h -> (h + d) mod 1`, with saturation and value kept (`hue_shift_planes`).

A random order per sample is done by running four stages; at stage `s` each sample
applies the map of the operation its permutation puts at `s`: the three candidate
matrices are selected per sample (one matmul per stage, not three), then the hue
shift, with a zero shift (the identity) for samples whose stage `s` is not hue.
"""

import numpy as np

from keras_contrastive.layers.augmentation.geometry import (
    dtype_of,
    from_planes,
    resolve_backend,
    to_planes,
)

#: ITU-R BT.601 luma weights.
LUMA = np.array([0.299, 0.587, 0.114])

#: operation indices used by `order`.
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3


def _const(b, array, dtype):
    return b.core.convert_to_tensor(np.asarray(array, dtype=dtype), dtype=dtype)


def _identity(b, factor, dtype):
    """`(batch, 3, 3)` identity matrices times a `(batch,)` factor."""
    return factor[:, None, None] * _const(b, np.eye(3), dtype)[None]


def brightness_matrix(factor, backend=None):
    b = resolve_backend(backend)
    return _identity(b, factor, dtype_of(factor))


def saturation_matrix(factor, backend=None):
    b = resolve_backend(backend)
    dtype = dtype_of(factor)
    gray = _const(b, np.outer(np.ones(3), LUMA), dtype)[None]
    return _identity(b, factor, dtype) + (1.0 - factor)[:, None, None] * gray


def hue_shift_planes(planes, delta, backend=None):
    """Shifts the HSV hue of `(batch, 3, height, width)` planes in [0, 1].

    Per sample, `h -> (h + delta) mod 1` with saturation and value unchanged
    (torchvision's `adjust_hue`). Written without the HSV round trip: a pixel's
    value `max`, chroma `c = max - min` and minimum are kept, and each output
    channel is a piecewise-linear function of the shifted hue: channel `n` equals
    `max - c * clip(min(t, 4 - t), 0, 1)` with `t = (6 h' + n) mod 6` for the
    channels (R, G, B) at `n = 5, 3, 1`. Grey pixels (`c = 0`) are unchanged.

    Args:
        planes: `(batch, 3, height, width)` RGB planes in [0, 1].
        delta: `(batch,)` hue shifts in turns.
    """
    b = resolve_backend(backend)
    bnp = b.numpy
    r, g, bl = planes[:, 0], planes[:, 1], planes[:, 2]
    # Elementwise, not a reduction over the channel axis (which fails on an
    # empty batch in TensorFlow).
    high = bnp.maximum(bnp.maximum(r, g), bl)
    chroma = high - bnp.minimum(bnp.minimum(r, g), bl)
    safe = bnp.where(chroma > 0.0, chroma, bnp.ones_like(chroma))
    # Hue in sixths of a turn, by the sector of the largest channel (ties go to
    # red, then green, as torchvision's rgb -> hsv).
    red_max = bnp.equal(high, r)
    green_max = bnp.logical_and(bnp.equal(high, g), bnp.logical_not(red_max))
    sixths = bnp.where(
        red_max,
        (g - bl) / safe,
        bnp.where(green_max, 2.0 + (bl - r) / safe, 4.0 + (r - g) / safe),
    )
    shifted = bnp.mod(sixths + 6.0 * delta[:, None, None], 6.0)
    channels = []
    for k in (5.0, 3.0, 1.0):  # R, G, B
        t = bnp.mod(shifted + k, 6.0)
        ramp = bnp.clip(bnp.minimum(t, 4.0 - t), 0.0, 1.0)
        channels.append(high - chroma * ramp)
    return bnp.stack(channels, axis=1)


def grayscale_matrix(flag, backend=None):
    """Per sample: the grayscale map where `flag` is True, the identity elsewhere."""
    b = resolve_backend(backend)
    dtype = dtype_of(flag) if "float" in dtype_of(flag) else "float32"
    gray = _const(b, np.outer(np.ones(3), LUMA), dtype)
    eye = _const(b, np.eye(3), dtype)
    return b.numpy.where(flag[:, None, None], gray[None], eye[None])


def apply_color_matrix(pixels, matrix, offset=None, backend=None):
    """`out[b, :, n] = matrix[b] @ pixels[b, :, n] (+ offset[b])`.

    `pixels`: `(batch, 3, n_pixels)` (channel planes, flattened): one small batched
    matmul with a long minor axis, fast on every backend and under XLA.
    """
    b = resolve_backend(backend)
    out = b.numpy.matmul(matrix, pixels)
    if offset is not None:
        out = out + offset[:, :, None]
    return out


def _hue_stage(x, shape, delta, b):
    """The hue shift of one stage on flattened planes `(batch, 3, pixels)`.

    Each sample's hue shift happens at one of the four stages, so a stage shifts
    only some samples (`delta` is 0 for the others). Compiled graphs (XLA,
    tf.data) need static shapes and shift every sample, by 0 where inactive.
    Eager PyTorch can take the active samples alone, which does a quarter of the
    work over the four stages; the others are returned as they are.
    """
    bnp = b.numpy
    flat = (shape[0], shape[1], shape[2] * shape[3])
    if getattr(b, "name", None) != "torch":
        return bnp.reshape(hue_shift_planes(bnp.reshape(x, shape), delta, b), flat)
    import torch  # the torch backend is active, so torch is importable

    active = torch.nonzero(delta != 0.0, as_tuple=True)[0]
    if active.numel() == 0:
        return x
    shifted = hue_shift_planes(
        torch.reshape(x[active], (-1, *shape[1:])), delta[active], b
    )
    out = x.clone()
    out[active] = torch.reshape(shifted, (-1, *flat[1:]))
    return out


def color_distort_planes(
    planes, brightness, contrast, saturation, hue, order, grayscale=None, backend=None
):
    """`color_distort` on `(batch, 3, height, width)` planes in [0, 1]."""
    b = resolve_backend(backend)
    bnp = b.numpy
    dtype = dtype_of(planes)
    # The draws come in Keras' float type (`keras.config.floatx`), which need
    # not be the images'.
    brightness, contrast, saturation, hue = (
        b.core.cast(v, dtype) for v in (brightness, contrast, saturation, hue)
    )
    shape = tuple(b.core.shape(planes))
    # The pixel count spelled out: -1 is ambiguous for an empty batch.
    x = bnp.reshape(planes, (shape[0], shape[1], shape[2] * shape[3]))
    eye = _const(b, np.eye(3), dtype)[None]
    candidates = bnp.stack(
        [
            brightness_matrix(brightness, b),
            _identity(b, contrast, dtype),
            saturation_matrix(saturation, b),
            eye * bnp.ones_like(contrast)[:, None, None],  # the hue stage's
        ],
        axis=1,
    )  # (batch, 4, 3, 3)
    order = b.core.cast(order, dtype)
    op_ids = bnp.arange(4, dtype=dtype)[None, :]
    luma = _const(b, LUMA, dtype)
    for stage in range(4):
        select = b.core.cast(bnp.equal(order[:, stage : stage + 1], op_ids), dtype)
        matrix = bnp.einsum("bk,bkij->bij", select, candidates)
        # Contrast pulls towards the CURRENT image's mean grey level.
        mean = bnp.sum(bnp.mean(x, axis=2) * luma[None], axis=1, keepdims=True)
        offset = (select[:, CONTRAST] * (1.0 - contrast))[:, None] * mean
        x = bnp.clip(apply_color_matrix(x, matrix, offset, b), 0.0, 1.0)
        x = _hue_stage(x, shape, select[:, HUE] * hue, b)
    if grayscale is not None:
        # Luma weights are positive and sum to 1: the result stays in [0, 1].
        gray = b.core.cast(grayscale_matrix(grayscale, b), dtype)
        x = apply_color_matrix(x, gray, backend=b)
    return bnp.reshape(x, shape)


def color_distort(
    images,
    brightness,
    contrast,
    saturation,
    hue,
    order,
    grayscale=None,
    backend=None,
):
    """SimCLR colour distortion with given per-sample parameters.

    Args:
        images: `(batch, height, width, 3)` floats in [0, 1].
        brightness, contrast, saturation: `(batch,)` factors (1 = unchanged).
        hue: `(batch,)` hue shifts in turns (0 = unchanged, 0.5 = opposite hue).
        order: `(batch, 4)` ints, a permutation per sample: `order[b, s]` is the
            operation (`BRIGHTNESS`, `CONTRAST`, `SATURATION`, `HUE`) at stage `s`.
        grayscale: optional `(batch,)` bools, convert those samples to grayscale
            (replicated on the 3 channels) at the end.

    Returns:
        The distorted images, clipped to [0, 1] after every operation.
    """
    b = resolve_backend(backend)
    planes = color_distort_planes(
        to_planes(images, b),
        brightness,
        contrast,
        saturation,
        hue,
        order,
        grayscale,
        backend=b,
    )
    return from_planes(planes, b)


def jitter_bounds(strength):
    """SimCLR's magnitudes for a colour strength `s`: 0.8 s for brightness, contrast
    and saturation (factors in [max(0, 1 - 0.8 s), 1 + 0.8 s]), 0.2 s for hue."""
    m = 0.8 * strength
    return (max(0.0, 1.0 - m), 1.0 + m), 0.2 * strength


#: number of uniform columns `sample_color_params` consumes.
COLOR_UNIFORMS = 10


def sample_color_params(uniforms, strength, jitter_rate, grayscale_rate, backend=None):
    """Maps `(batch, COLOR_UNIFORMS)` uniforms to the arguments of `color_distort`.

    Samples not selected for jitter (probability `1 - jitter_rate`) get neutral
    factors, which makes every stage an identity for them.
    """
    b = resolve_backend(backend)
    bnp = b.numpy
    (lo, hi), hue_max = jitter_bounds(strength)
    apply = uniforms[:, 8] < jitter_rate

    def factor(u):
        return bnp.where(apply, lo + u * (hi - lo), bnp.ones_like(u))

    hue = bnp.where(
        apply, (2.0 * uniforms[:, 3] - 1.0) * hue_max, bnp.zeros_like(uniforms[:, 3])
    )
    return {
        "brightness": factor(uniforms[:, 0]),
        "contrast": factor(uniforms[:, 1]),
        "saturation": factor(uniforms[:, 2]),
        "hue": hue,
        # argsort of 4 uniforms is a uniformly random permutation.
        "order": bnp.argsort(uniforms[:, 4:8], axis=1),
        "grayscale": uniforms[:, 9] < grayscale_rate,
    }
