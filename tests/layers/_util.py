"""Helpers shared by the layer tests."""

import keras
import numpy as np


def to_numpy(x):
    """NumPy copy of a backend tensor or of a TensorFlow tensor from tf.data."""
    if type(x).__module__.startswith("tensorflow"):
        return np.asarray(x)
    return np.asarray(keras.ops.convert_to_numpy(x))


def tensor(x):
    return keras.ops.convert_to_tensor(x)


def bilinear_resize_reference(image, box, size, flip=False):
    """Crop `box = (top, left, h, w)` (pixel edges) and resize to `size`: each
    output pixel bilinearly interpolates the source at its half-pixel-centred
    coordinate, clamped to the border. Written pixel by pixel, in float64."""
    image = np.asarray(image, np.float64)
    in_h, in_w = image.shape[:2]
    top, left, h, w = box
    out_h, out_w = size
    out = np.zeros((out_h, out_w, image.shape[2]))
    for i in range(out_h):
        y = min(max(top + (i + 0.5) * h / out_h - 0.5, 0.0), in_h - 1.0)
        y0 = int(np.floor(y))
        y1 = min(y0 + 1, in_h - 1)
        fy = y - y0
        for j in range(out_w):
            jj = out_w - 1 - j if flip else j
            x = min(max(left + (jj + 0.5) * w / out_w - 0.5, 0.0), in_w - 1.0)
            x0 = int(np.floor(x))
            x1 = min(x0 + 1, in_w - 1)
            fx = x - x0
            top_row = (1 - fx) * image[y0, x0] + fx * image[y0, x1]
            bottom_row = (1 - fx) * image[y1, x0] + fx * image[y1, x1]
            out[i, j] = (1 - fy) * top_row + fy * bottom_row
    return out
