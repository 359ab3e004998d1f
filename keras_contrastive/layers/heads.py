"""MLP heads: the projection head (SimCLR, MoCo v2) and the prediction head (BYOL,
SimSiam). A head is a list of blocks; the two classes only differ in defaults."""

import keras

from keras_contrastive._validation import (
    check_bool,
    check_positive_int,
    check_positive_number,
    check_probability,
    fail,
    is_int,
)


class MLPHead(keras.layers.Layer):
    """A stack of `Dense -> [BatchNorm] -> activation` blocks and a linear output.

    One block per entry of `hidden_dims`; then `Dense(output_dim)` with no
    activation, optionally followed by a batch norm. A dense layer followed by a
    batch norm has no bias (the norm's offset replaces it). Subclasses name the
    recipes; use them rather than this class.

    Args:
        hidden_dims: sizes of the hidden layers (an int or a sequence; empty for a
            linear head).
        output_dim: size of the output.
        batch_norm: batch norm after each hidden dense layer.
        activation: activation of the hidden layers (name or callable).
        output_batch_norm: batch norm after the output layer too, without a
            learned offset (SimCLR v2). Default False (SimCLR v1, lightly).
        batch_norm_momentum: moving-average momentum of the batch norms (0.9, as
            SimCLR's TensorFlow code and PyTorch's 0.1 convention).
        batch_norm_epsilon: batch norm epsilon (1e-5, as SimCLR and PyTorch).
        kernel_initializer: initializer of the dense kernels.
        synchronized_batch_norm: batch norms with the statistics of the global
            batch under a `tf.distribute` strategy (Keras'
            `BatchNormalization(synchronized=True)`, SimCLR's global BN).
            TensorFlow only; on JAX (`DataParallel` already normalises over the
            global batch) and PyTorch (one device) batch norm is unchanged.
            Default False.
        **kwargs: standard layer arguments (`name`, `dtype`, ...).
    """

    def __init__(
        self,
        hidden_dims,
        output_dim,
        batch_norm=True,
        activation="relu",
        output_batch_norm=False,
        batch_norm_momentum=0.9,
        batch_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        synchronized_batch_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dims = check_hidden_dims("hidden_dims", hidden_dims)
        self.output_dim = check_positive_int("output_dim", output_dim)
        self.batch_norm = check_bool("batch_norm", batch_norm)
        self.output_batch_norm = check_bool("output_batch_norm", output_batch_norm)
        self.synchronized_batch_norm = check_bool(
            "synchronized_batch_norm", synchronized_batch_norm
        )
        # Keras accepts synchronized=True on TensorFlow only (see the docstring).
        synchronized = (
            self.synchronized_batch_norm and keras.backend.backend() == "tensorflow"
        )
        self.activation = _get_keras_object(
            keras.activations.get,
            "activation",
            activation,
            "a Keras activation name or callable",
        )
        self.batch_norm_momentum = check_probability(
            "batch_norm_momentum", batch_norm_momentum
        )
        self.batch_norm_epsilon = check_positive_number(
            "batch_norm_epsilon", batch_norm_epsilon
        )
        self.kernel_initializer = _get_keras_object(
            keras.initializers.get,
            "kernel_initializer",
            kernel_initializer,
            "a Keras initializer, its name or its config",
        )

        def dense(units, use_bias, name):
            return keras.layers.Dense(
                units,
                use_bias=use_bias,
                kernel_initializer=self.kernel_initializer,
                dtype=self.dtype_policy,
                name=name,
            )

        def norm(name, center=True):
            return keras.layers.BatchNormalization(
                momentum=self.batch_norm_momentum,
                epsilon=self.batch_norm_epsilon,
                center=center,
                synchronized=synchronized,
                dtype=self.dtype_policy,
                name=name,
            )

        self.blocks = []
        for i, units in enumerate(self.hidden_dims):
            self.blocks.append(dense(units, not batch_norm, f"hidden_{i}"))
            if batch_norm:
                self.blocks.append(norm(f"hidden_{i}_bn"))
            self.blocks.append(
                keras.layers.Activation(
                    self.activation, dtype=self.dtype_policy, name=f"hidden_{i}_act"
                )
            )
        self.blocks.append(dense(self.output_dim, not output_batch_norm, "output"))
        if output_batch_norm:
            self.blocks.append(norm("output_bn", center=False))

    def build(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            fail("input_shape", "(batch, dim) with a known dim", tuple(input_shape))
        shape = tuple(input_shape)
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)

    def call(self, inputs, training=None):
        x = inputs
        for block in self.blocks:
            if isinstance(block, keras.layers.BatchNormalization):
                x = block(x, training=training)
            else:
                x = block(x)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dims": list(self.hidden_dims),
                "output_dim": self.output_dim,
                "batch_norm": self.batch_norm,
                "activation": keras.activations.serialize(self.activation),
                "output_batch_norm": self.output_batch_norm,
                "batch_norm_momentum": self.batch_norm_momentum,
                "batch_norm_epsilon": self.batch_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "synchronized_batch_norm": self.synchronized_batch_norm,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_contrastive")
class ProjectionHead(MLPHead):
    """SimCLR's projection head `g`: MLP from encoder features to the loss space.

    Defaults follow SimCLR: one hidden layer of 2048 with batch norm and ReLU, a
    128-d linear output without activation (the loss normalises it). SimCLR v2's
    deeper heads: `hidden_dims=(2048, 2048)`, `output_batch_norm=True`.

    Args:
        hidden_dims: sizes of the hidden layers (empty: a linear projection).
        output_dim: size of the projection.
        batch_norm: batch norm after each hidden dense layer.
        activation: activation of the hidden layers.
        **kwargs: `output_batch_norm`, `batch_norm_momentum`,
            `batch_norm_epsilon`, `kernel_initializer`, `synchronized_batch_norm`
            (see `MLPHead`) and the standard layer arguments.

    Example:

    >>> import numpy as np
    >>> head = ProjectionHead(hidden_dims=(64,), output_dim=16)
    >>> tuple(head(np.zeros((4, 32), "float32")).shape)
    (4, 16)
    """

    def __init__(
        self,
        hidden_dims=(2048,),
        output_dim=128,
        batch_norm=True,
        activation="relu",
        **kwargs,
    ):
        super().__init__(
            hidden_dims=hidden_dims,
            output_dim=output_dim,
            batch_norm=batch_norm,
            activation=activation,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="keras_contrastive")
class PredictionHead(MLPHead):
    """The predictor `q` of BYOL / SimSiam: an MLP on top of the projection.

    Defaults: one hidden layer of 512 with batch norm and ReLU and a linear 128-d
    output, i.e. SimSiam's bottleneck predictor sized for a 128-d projection.
    BYOL uses `hidden_dims=(4096,), output_dim=256`; SimSiam on ImageNet
    `hidden_dims=(512,), output_dim=2048`. `output_dim` must equal the projection
    size the prediction is compared with.

    Args:
        hidden_dims: sizes of the hidden layers.
        output_dim: size of the prediction.
        batch_norm: batch norm after each hidden dense layer.
        activation: activation of the hidden layers.
        **kwargs: as `ProjectionHead`.

    Example:

    >>> import numpy as np
    >>> head = PredictionHead(hidden_dims=(32,), output_dim=16)
    >>> tuple(head(np.zeros((4, 16), "float32")).shape)
    (4, 16)
    """

    def __init__(
        self,
        hidden_dims=(512,),
        output_dim=128,
        batch_norm=True,
        activation="relu",
        **kwargs,
    ):
        super().__init__(
            hidden_dims=hidden_dims,
            output_dim=output_dim,
            batch_norm=batch_norm,
            activation=activation,
            **kwargs,
        )


def check_hidden_dims(name, value):
    """Returns layer sizes as a tuple of ints >= 1 (from an int or a sequence).

    An empty sequence is allowed: a linear head.
    """
    expectation = "a positive int or a sequence of positive ints"
    dims = (value,) if is_int(value) else value
    if not isinstance(dims, (tuple, list)) or not all(is_int(d) for d in dims):
        fail(name, expectation, value, TypeError)
    if any(d < 1 for d in dims):
        fail(name, expectation, value)
    return tuple(int(d) for d in dims)


def _get_keras_object(get, name, value, expectation):
    """`get(value)` (e.g. `keras.activations.get`), failing in our message style.

    A string or config Keras cannot resolve is a wrong value; anything else a
    wrong type.
    """
    try:
        return get(value)
    except (ValueError, TypeError):
        error = ValueError if isinstance(value, (str, dict)) else TypeError
        fail(name, expectation, value, error)
