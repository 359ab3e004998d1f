"""Swapping functions of Keras' private backend modules for the span of a block.

`channels_last_convolutions` and `fused_batch_normalization` (PyTorch) and
`kernel_gradient_as_matmuls` (JAX) replace Keras' own `conv` (and
`max_pool`, `moments`, `batch_normalization`) while a step runs or is traced;
all go through `replaced`, which restores the originals on exit and on an
exception and leaves a nested use alone.
"""

import contextlib
import importlib

import keras


def pair(value):
    """An int or a 2-sequence as a 2-tuple (strides, dilation, pool sizes)."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def keras_nn(backend, names):
    """Keras' `nn` module of `backend` when that is the backend in use and the
    module has every function in `names`; else None (nothing to replace)."""
    if keras.backend.backend() != backend:
        return None
    module = importlib.import_module(f"keras.src.backend.{backend}.nn")
    return module if all(callable(getattr(module, n, None)) for n in names) else None


@contextlib.contextmanager
def replaced(backend, replacements):
    """Within the block, Keras' `<backend>.nn.<name>` is `make(Keras' own
    function)` when `backend` is the one in use (else nothing is replaced).

    Args:
        backend: "torch", "jax" or "tensorflow".
        replacements: a dict name -> make; each replacement carries Keras' own
            function as `keras_op`, which also marks a nested use.
    """
    module = keras_nn(backend, replacements)
    first = next(iter(replacements))
    if module is None or hasattr(getattr(module, first), "keras_op"):
        yield
        return
    keras_ops = {name: getattr(module, name) for name in replacements}
    for name, make in replacements.items():
        setattr(module, name, make(keras_ops[name]))
    try:
        yield
    finally:
        for name, op in keras_ops.items():
            setattr(module, name, op)
