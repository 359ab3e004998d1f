"""Scaling out: the learning rate for a global batch, and synchronised batch norm."""

import keras

from keras_contrastive._validation import fail

# One implementation, offered here too: a global batch is what scaling out is about.
from keras_contrastive.optimizers.schedules import scaled_learning_rate  # noqa: F401


def synchronize_batch_norm(model):
    """A copy of `model` whose batch norms use the statistics of the global batch.

    Every `keras.layers.BatchNormalization` of the Functional or Sequential
    `model` (nested Functional and Sequential models included) is rebuilt with
    `synchronized=True`, and every head of `keras_contrastive.layers`
    (`ProjectionHead`, `PredictionHead`) with `synchronized_batch_norm=True`; all
    weights, moving statistics included, are copied.
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
            norm sits inside another custom layer, which this function cannot
            rebuild; build such layers with `synchronized=True` instead.

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


def _heads():
    # Imported on use: the layers package imports `distribute` (replica seeds).
    from keras_contrastive.layers.heads import MLPHead

    return MLPHead


def _clone_layer(layer):
    config = layer.get_config()
    if isinstance(layer, _heads()):
        config["synchronized_batch_norm"] = True  # applied on TensorFlow only
    # Keras refuses synchronized=True on other backends (see the docstring).
    elif (
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
        fail(
            "model",
            "a Functional or Sequential keras.Model",
            model,
            TypeError,
            detail="Only those can be rebuilt layer by layer. For a subclassed "
            "model, create its BatchNormalization layers with synchronized=True "
            "(TensorFlow)",
        )
    for layer in model.layers:
        if _is_graph_model(layer):
            _check_rebuildable(layer)
            continue
        if isinstance(layer, (keras.layers.BatchNormalization, _heads())):
            continue
        inner = [
            sub
            for sub in layer._flatten_layers(include_self=False)
            if isinstance(sub, keras.layers.BatchNormalization)
        ]
        if inner:
            fail(
                "model",
                "free of BatchNormalization layers inside custom layers",
                model,
                TypeError,
                detail=f"The custom layer {layer.name!r} ({type(layer).__name__}) "
                f"holds {inner[0].name!r}, which synchronize_batch_norm cannot "
                "rebuild. Create that layer's BatchNormalization with "
                "synchronized=True (TensorFlow)",
            )
