"""`check_images_against_value_range`: does a batch of images fit a `value_range`?

The augmentation layers clip to their `value_range` (the colour maths works on
[0, 1] and clips after every operation, the noise clips), so images in another
range are silently destroyed: uint16 images under the default `(0, 255)`, or uint8
images under `(0, 1)`, lose three quarters of their pixels to the clip. This check
runs in Python on NumPy data (a model's `fit` calls it on the first batch before
compiling; the layers call it when called eagerly on a NumPy array) and raises or
warns naming `value_range`.
"""

import math
import warnings

import numpy as np

from keras_contrastive._validation import (
    check_pair,
    fail,
    host_value,
    shown_as,
)

#: More than this fraction of the values outside `value_range`: a ValueError.
MAX_CLIPPED_FRACTION = 0.5
#: More than this fraction (and at most `MAX_CLIPPED_FRACTION`): a warning.
WARN_CLIPPED_FRACTION = 0.01
#: Values this far (as a fraction of the range's width) outside it are not
#: counted: resampling round-off, or bicubic overshoot of a few levels.
TOLERANCE = 0.02
#: At most this many values are inspected (whole rows, evenly spaced).
MAX_VALUES = 1 << 22

# (name, value_range, kind) of the warnings already given in this process.
_WARNED = set()


def check_images_against_value_range(
    images, value_range, name="x", allow_non_finite=False
):
    """Raises or warns when `images` do not fit `value_range` (in Python, NumPy).

    Checks, on the values of `images` (a NumPy array or anything whose values are
    visible in Python; symbolic tensors are not checked):

    - an unsigned integer dtype wider than 8 bits (uint16, uint32, uint64: 16-bit
      images) under a `value_range` whose top is at most 255 (the default
      `(0, 255)`): a `ValueError` naming `value_range`;
    - more than half of the values outside `value_range` (they would be clipped;
      e.g. uint8 images under `value_range=(0, 1)`): a `ValueError` naming
      `value_range`; more than 1% outside: a warning;
    - float images inside [0, 1] under a `value_range` at least 10 wide (e.g.
      `(0, 255)`): a warning, given once per process, naming `value_range` (the
      augmentations would work on nearly black images);
    - NaN or inf values: a `ValueError` naming `name` (unless `allow_non_finite`,
      which judges the finite values only); a non-numeric or boolean dtype: a
      `TypeError`.

    Values within 2% of the range's width outside it are not counted (resampling
    round-off). Large arrays are checked on at most 4M values (whole images,
    evenly spaced). Signed integer dtypes (NumPy's default int64 included) are
    judged by their values only.

    Args:
        images: a batch of images, or one image.
        value_range: the augmenter's `(low, high)`.
        name: how the images are named in messages (`fit`'s `x` by default).
        allow_non_finite: whether NaN and inf are left to the caller (a model's
            `fit`, whose step skips a batch with a non-finite loss).

    Returns:
        None.

    Example:

    >>> import numpy as np
    >>> check_images_against_value_range(np.zeros((2, 8, 8, 3), "uint8"), (0, 255))
    >>> images = np.full((2, 8, 8, 3), 200, "uint8")
    >>> check_images_against_value_range(images, (0, 1))
    Traceback (most recent call last):
    ...
    ValueError: `value_range` must be a range that covers the values of `x`...
    """
    low, high = check_pair("value_range", value_range)
    if low == high:
        fail("value_range", "a pair (low, high) with low < high", value_range)
    array = host_value(images)
    if array is None or array.size == 0:
        return
    dtype = array.dtype
    if dtype.kind not in "iuf":
        fail(
            f"{name}.dtype",
            "a numeric (integer or float) image dtype",
            str(dtype),
            TypeError,
        )
    if dtype.kind == "u" and dtype.itemsize > 1 and high <= 255:
        fail(
            "value_range",
            f"the range of the values of `{name}`",
            (low, high),
            detail=f"`{name}` has dtype {dtype} ({8 * dtype.itemsize}-bit images, "
            f"values up to {np.iinfo(dtype).max}); convert them to 8 bits "
            f"(`({name} // 257).astype('uint8')` for 16-bit images) or pass "
            f"value_range=(0, {np.iinfo(dtype).max})",
        )
    sample = _sample(array)
    if dtype.kind == "f":
        finite = np.isfinite(sample)
        bad = sample.size - np.count_nonzero(finite)
        if bad and allow_non_finite:
            sample = sample[finite]
            if not sample.size:
                return
        elif bad:
            fail(
                name,
                "free of NaN and inf",
                shown_as(f"an array with {bad} NaN or inf values (in those checked)"),
            )
    smallest, largest = sample.min().item(), sample.max().item()
    tolerance = TOLERANCE * (high - low)
    if smallest < low - tolerance or largest > high + tolerance:
        outside = np.count_nonzero(
            (sample < low - tolerance) | (sample > high + tolerance)
        )
        fraction = outside / sample.size
        detail = (
            f"{100 * fraction:.1f}% of the values of `{name}` ({dtype}, in "
            f"[{_fmt(smallest)}, {_fmt(largest)}]) lie outside it and would be "
            f"clipped; pass value_range={_suggested_range(dtype, smallest, largest)}"
            " or rescale the images"
        )
        if fraction > MAX_CLIPPED_FRACTION:
            fail(
                "value_range",
                f"a range that covers the values of `{name}`",
                (low, high),
                detail=detail,
            )
        if fraction > WARN_CLIPPED_FRACTION:
            _warn_once(
                (name, low, high, "clipped"),
                f"`value_range`={(low, high)} does not cover the values of "
                f"`{name}`: {detail}.",
            )
        return
    if dtype.kind == "f" and high - low >= 10.0 and smallest >= 0 and 0 < largest <= 1:
        _warn_once(
            (name, low, high, "unit"),
            f"`value_range`={(low, high)} but `{name}` holds floats in "
            f"[{_fmt(smallest)}, {_fmt(largest)}]: the augmentations would treat "
            f"them as nearly black images. Pass value_range=(0, 1) for images "
            f"in [0, 1], or multiply them by {_fmt(high)}.",
        )


def _sample(array):
    """At most `MAX_VALUES` values: whole leading-axis slices, evenly spaced."""
    if array.size <= MAX_VALUES or array.ndim == 0:
        return array
    step = math.ceil(array.size / MAX_VALUES)
    return array[::step] if array.shape[0] >= step else array.reshape(-1)[::step]


def _fmt(number):
    return f"{number:g}" if isinstance(number, float) else str(number)


def _suggested_range(dtype, smallest, largest):
    if dtype.kind in "iu" and smallest >= 0:
        for top in (255, 65535):
            if largest <= top:
                return (0, top)
    return (math.floor(smallest), math.ceil(largest))


def _warn_once(key, message):
    if key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(message, UserWarning, stacklevel=3)
