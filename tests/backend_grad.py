"""Value and gradient of a scalar function of tensors, on whichever backend runs.

Tests use it to compare our gradients against finite differences computed in NumPy.
"""

import keras
import numpy as np


def value_and_grad(fn, *arrays):
    """Returns (value, [d value / d array_i]) as NumPy, for float NumPy `arrays`."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(a) for a in arrays]
        with tf.GradientTape() as tape:
            for t in tensors:
                tape.watch(t)
            value = fn(*tensors)
        grads = tape.gradient(value, tensors)
    elif backend == "jax":
        import jax

        value, grads = jax.value_and_grad(
            lambda *ts: fn(*ts), argnums=tuple(range(len(arrays)))
        )(*[jax.numpy.asarray(a) for a in arrays])
    elif backend == "torch":
        import torch

        tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
        value = fn(*tensors)
        grads = torch.autograd.grad(value, tensors, allow_unused=True)
    else:
        raise ValueError(f"unsupported backend {backend!r}")
    grads = [
        np.zeros_like(a) if g is None else keras.ops.convert_to_numpy(g)
        for a, g in zip(arrays, grads)
    ]
    return float(keras.ops.convert_to_numpy(value)), grads


def finite_difference_grad(fn_numpy, arrays, eps=1e-3):
    """Central differences of a NumPy scalar function (float64) w.r.t. each array."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    grads = []
    for i, a in enumerate(arrays):
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            plus = [x.copy() for x in arrays]
            minus = [x.copy() for x in arrays]
            plus[i][idx] += eps
            minus[i][idx] -= eps
            g[idx] = (fn_numpy(*plus) - fn_numpy(*minus)) / (2 * eps)
        grads.append(g)
    return grads


def assert_gradients_close(expected, actual, rtol=1e-5):
    """Each variable's gradient within `rtol` of its norm, in the L2 norm.

    A variable whose exact gradient is zero gets float32 rounding noise (~1e-11)
    from either computation, so the bound has a floor relative to the step's
    largest gradient: rounding at the precision of the step, not of that variable."""
    floor = 1e-6 * max(np.linalg.norm(g) for g in expected)
    for g, a in zip(expected, actual):
        assert np.linalg.norm(a - g) <= rtol * max(np.linalg.norm(g), floor)
