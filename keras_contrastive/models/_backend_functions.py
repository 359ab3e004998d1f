"""Swapping functions of Keras' private backend modules for the span of a block.

`channels_last_convolutions` (PyTorch) and `kernel_gradient_as_convolution`
(JAX) replace Keras' own `conv` (and `max_pool`) while a step runs or is traced;
both go through `replaced`, which restores the originals on exit and on an
exception and leaves a nested use alone.
"""

import contextlib


def pair(value):
    """An int or a 2-sequence as a 2-tuple (strides, dilation, pool sizes)."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


@contextlib.contextmanager
def replaced(module, replacements):
    """Within the block, `module.<name>` is `make(Keras' own function)`.

    Args:
        module: a Keras backend module, or None (then nothing is replaced).
        replacements: a dict name -> make; each replacement carries Keras' own
            function as `keras_op`, which also marks a nested use.
    """
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
