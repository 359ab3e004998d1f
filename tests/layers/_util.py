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


_JITTED = {}


def run(fn, *arrays):
    """`fn(*tensors)` as NumPy; on JAX through one `jax.jit` (eager JAX compiles
    every small op separately per shape, which makes a test take seconds)."""
    tensors = [tensor(a) for a in arrays]
    if keras.backend.backend() == "jax":
        import jax

        if fn.__name__ == "<lambda>":
            fn = jax.jit(fn)
        else:  # a library function: reuse its compilations across tests
            fn = _JITTED.setdefault(fn, jax.jit(fn))
    out = fn(*tensors)
    if isinstance(out, dict):
        return {k: to_numpy(v) for k, v in out.items()}
    return to_numpy(out)


def layer_factories():
    """One factory per augmentation layer, `factory(**kwargs) -> layer`.

    Tests share these configurations and a (8, 16, 16, 3) batch so that eager JAX
    reuses compiled functions across tests (they are keyed by configuration and
    shape, not by seed).
    """
    from keras_contrastive import layers

    return {
        "crop": lambda **kw: layers.RandomResizedCrop(12, 12, **kw),
        "color": lambda **kw: layers.RandomColorDistortion(jitter_rate=1.0, **kw),
        "blur": lambda **kw: layers.RandomGaussianBlur(
            sigma=(0.5, 2.0), rate=1.0, **kw
        ),
        "noise": lambda **kw: layers.RandomGaussianNoise(**kw),
        "cutout": lambda **kw: layers.RandomCutout(size=0.4, **kw),
        "apply": lambda **kw: layers.RandomApply(
            layers.RandomColorDistortion(jitter_rate=1.0, seed=7), rate=0.5, **kw
        ),
        "simclr": lambda **kw: layers.SimCLRAugmenter(12, **kw),
    }


OUTPUT_SIZE = {"crop": 12, "simclr": 12}


def image_batch(rng, n=8, size=16, dtype="uint8"):
    return rng.integers(0, 256, (n, size, size, 3)).astype(dtype)


def distinct_samples(batch):
    flat = np.round(np.asarray(batch).reshape(len(batch), -1), 2)
    return len({row.tobytes() for row in flat})
