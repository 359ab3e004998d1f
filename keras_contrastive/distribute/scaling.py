"""Scaling out: the learning rate for a global batch, and synchronised batch norm."""

import numbers

import keras

from keras_contrastive.optimizers import schedules


def scaled_learning_rate(
    base_learning_rate, global_batch_size, rule="linear", base_batch_size=None
):
    """The learning rate for a global batch, by SimCLR's linear or square-root rule.

    SimCLR (Chen et al. 2020, appendix B.1) scales the LARS learning rate with
    the global batch size `B` (the sum of every replica's batch) in one of two
    ways:

    - `rule="linear"`: `lr = base_learning_rate * B / base_batch_size`, with
      `base_batch_size=256` by default (SimCLR: `0.3 * B / 256`, 4.8 at 4096);
    - `rule="sqrt"`: `lr = base_learning_rate * sqrt(B / base_batch_size)`, with
      `base_batch_size=1` by default, i.e. `base_learning_rate * sqrt(B)`
      (SimCLR: `0.075 * sqrt(B)`, also 4.8 at 4096; the better rule for small
      batches and long runs).

    With the defaults this is `keras_contrastive.optimizers.scaled_learning_rate`.
    Pass `base_batch_size` to state the batch at which `base_learning_rate` was
    tuned instead: `scaled_learning_rate(0.3, 1024, "sqrt", base_batch_size=256)`
    is 0.6, the rate tuned at 256 carried to 1024 by the square-root rule.

    Args:
        base_learning_rate: Float >= 0, the rate at `base_batch_size`.
        global_batch_size: Int >= 1, the batch of one optimizer step summed over
            every replica and worker (not the per-replica batch).
        rule: `"linear"` or `"sqrt"`. Defaults to `"linear"`.
        base_batch_size: Int >= 1, the reference batch of `base_learning_rate`.
            `None` (default) means SimCLR's reference: 256 for `"linear"`, 1 for
            `"sqrt"`.

    Returns:
        The scaled learning rate, a Python float.

    Example:

    ```python
    from keras_contrastive.distribute import scaled_learning_rate
    from keras_contrastive.optimizers import LARS

    scaled_learning_rate(0.3, 4096)  # 4.8
    scaled_learning_rate(0.075, 4096, rule="sqrt")  # 4.8
    optimizer = LARS(scaled_learning_rate(0.3, 1024), weight_decay=1e-6)
    ```
    """
    _check_batch_size("global_batch_size", global_batch_size)
    if base_batch_size is not None:
        _check_batch_size("base_batch_size", base_batch_size)
    # Each rule is `base * f(B)` with SimCLR's f(B) = B / 256 or sqrt(B); the
    # optimizers module holds those formulas (and checks the other arguments).
    rate = schedules.scaled_learning_rate(base_learning_rate, global_batch_size, rule)
    if base_batch_size is None:
        return rate
    # Another reference batch B0: base * f(B) / f(B0) (f(B0) = the rate of 1 at B0).
    return rate / schedules.scaled_learning_rate(1.0, base_batch_size, rule)


def _check_batch_size(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")


def synchronize_batch_norm(model):
    """A copy of `model` whose batch norms use the statistics of the global batch.

    Every `keras.layers.BatchNormalization` of the Functional or Sequential
    `model` (nested Functional and Sequential models included) is rebuilt with
    `synchronized=True`; all weights, moving statistics included, are copied.
    What that changes depends on the backend:

    - TensorFlow under a `tf.distribute` strategy (`MirroredStrategy`,
      `MultiWorkerMirroredStrategy`, `TPUStrategy`): each replica's batch norm
      all-reduces the per-channel sums, so the mean and variance (and the moving
      statistics) are those of the global batch, as SimCLR's "global BN". Plain
      batch norm uses each replica's own rows. Outside a strategy: no change.
    - JAX: Keras only accepts `synchronized=True` on TensorFlow, so the copy
      keeps plain batch norm. Nothing is lost: under
      `keras.distribution.DataParallel` the step sees the global batch as one
      sharded array, and plain batch norm already uses global statistics.
    - PyTorch: the copy keeps plain batch norm (single device only; nothing to
      synchronise).

    Args:
        model: a built or unbuilt Functional or Sequential `keras.Model`.

    Returns:
        A new model of the same architecture and weights.

    Raises:
        TypeError: if `model` is not a Functional or Sequential model (a
            subclassed model cannot be rebuilt layer by layer), or if a batch
            norm sits inside a custom layer, which `keras.models.clone_model`
            cannot rebuild; build such layers with `synchronized=True` instead.

    Example:

    ```python
    import keras
    from keras_contrastive.distribute import synchronize_batch_norm

    encoder = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(16, 3, use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    encoder = synchronize_batch_norm(encoder)  # then: SimCLR(encoder, ...)
    ```
    """
    _check_rebuildable(model)
    copy = keras.models.clone_model(model, clone_function=_clone_layer, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


def _clone_layer(layer):
    config = layer.get_config()
    # Keras refuses synchronized=True on other backends (see the docstring).
    if (
        isinstance(layer, keras.layers.BatchNormalization)
        and keras.backend.backend() == "tensorflow"
    ):
        config["synchronized"] = True
    return layer.__class__.from_config(config)


def _is_graph_model(layer):
    """Whether `clone_model` rebuilds `layer` layer by layer."""
    from keras.src.models.functional import Functional

    return isinstance(layer, (keras.Sequential, Functional))


def _check_rebuildable(model):
    if not _is_graph_model(model):
        raise TypeError(
            "`model` must be a Functional or Sequential keras.Model: only those "
            "can be rebuilt layer by layer. Received: model of type "
            f"{type(model).__name__}. For a subclassed model, create its "
            "BatchNormalization layers with synchronized=True (TensorFlow)."
        )
    for layer in model.layers:
        if _is_graph_model(layer):
            _check_rebuildable(layer)
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            continue
        inner = [
            sub
            for sub in layer._flatten_layers(include_self=False)
            if isinstance(sub, keras.layers.BatchNormalization)
        ]
        if inner:
            raise TypeError(
                f"`model` holds a BatchNormalization ({inner[0].name!r}) inside "
                f"the custom layer {layer.name!r} ({type(layer).__name__}), "
                "which keras.models.clone_model cannot rebuild. Create that "
                "layer's BatchNormalization with synchronized=True (TensorFlow)."
            )
