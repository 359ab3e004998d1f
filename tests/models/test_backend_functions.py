"""The contexts that swap Keras' backend functions restore them on exit and on an
exception, leave a nested use alone, and touch nothing on other backends."""

import pytest

from keras_contrastive.models import (
    channels_last_convolutions,
    fused_batch_normalization,
)
from keras_contrastive.models._backend_functions import keras_nn
from keras_contrastive.models.jax_convolution import kernel_gradient_as_matmuls
from tests.conftest import BACKEND

CONTEXTS = {
    "channels_last_convolutions": (
        channels_last_convolutions,
        "torch",
        ("conv", "max_pool"),
    ),
    "fused_batch_normalization": (
        fused_batch_normalization,
        "torch",
        ("moments", "batch_normalization"),
    ),
    "kernel_gradient_as_matmuls": (
        kernel_gradient_as_matmuls,
        "jax",
        ("conv",),
    ),
}


@pytest.mark.parametrize("name", CONTEXTS)
def test_restores_keras_functions_on_exit_and_error(name):
    context, backend, names = CONTEXTS[name]
    module = keras_nn(BACKEND, names)
    if module is None:
        pytest.skip(f"Keras' {BACKEND} backend lacks {names}")

    def current():
        return tuple(getattr(module, n) for n in names)

    keras_ops = current()
    with context():
        inside = current()
        replaced = [a is not b for a, b in zip(inside, keras_ops)]
        assert all(replaced) if backend == BACKEND else not any(replaced)
        with context():  # nested: the same ones stay
            assert current() == inside
        assert current() == inside
    assert current() == keras_ops
    with pytest.raises(RuntimeError, match="inside"):
        with context():
            raise RuntimeError("inside")
    assert current() == keras_ops
