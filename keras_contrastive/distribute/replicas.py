"""Replica queries and the differentiable gather, one implementation per backend."""

import keras
from keras import ops


def _tf_replica_context():
    """The current `tf.distribute` replica context, or None outside one."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf.distribute.get_replica_context()


def num_replicas():
    """Number of replicas that each run the step on their own part of the batch.

    A Python int, known when the step is traced (no per-replica Python branching,
    so the same code runs under `TPUStrategy`). It is 1 on one device, in
    TensorFlow's cross-replica context, on JAX (a `DataParallel` step computes on
    the global batch; XLA shards it) and on PyTorch.
    """
    context = _tf_replica_context()
    return 1 if context is None else int(context.num_replicas_in_sync)


def replica_id():
    """This replica's index in [0, num_replicas()): a scalar int32 tensor."""
    context = _tf_replica_context()
    if context is None or num_replicas() == 1:
        return ops.convert_to_tensor(0, dtype="int32")
    import tensorflow as tf

    return tf.cast(context.replica_id_in_sync_group, tf.int32)


def replica_offset(local_batch_size):
    """Row of `gather(x)` where this replica's `local_batch_size` rows start."""
    if num_replicas() == 1:
        return 0
    return replica_id() * ops.cast(local_batch_size, "int32")


def gather(x):
    """Every replica's rows of `x` along axis 0, in replica order.

    The gradient of a gathered row flows back to the replica that owns it (summed
    over the replicas that used it). Identity on a single replica. Under
    `tf.distribute` every replica must hold the same number of rows (Keras splits
    each global batch evenly; a last partial batch is dropped by the strategy or
    must be padded).
    """
    context = _tf_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return x
    return context.all_gather(x, axis=0)


def sum_over_replicas(x):
    """The sum of `x` over every replica (the same value on each); identity on one.

    For counts and normalisers (no gradient flows through the reduction).
    """
    context = _tf_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return x
    import tensorflow as tf

    return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(x))


def scale_loss(loss):
    """`loss / num_replicas()`: what each replica differentiates.

    The optimizer sums the replicas' gradients (all-reduce); each replica's loss is
    the mean over its own anchors, so dividing by the replica count makes that sum
    the gradient of the mean over the global batch.
    """
    replicas = num_replicas()
    return loss if replicas == 1 else loss * (1.0 / replicas)


def check_supported():
    """Raises where the current backend cannot run the requested distribution."""
    if keras.backend.backend() != "torch":
        return
    distribution = keras.distribution.distribution()
    devices = getattr(getattr(distribution, "device_mesh", None), "devices", None)
    if distribution is not None and devices is not None and devices.size > 1:
        raise ValueError(
            "keras_contrastive cannot train on several devices with the PyTorch "
            "backend: Keras 3.15 has no multi-device `fit` for torch. Use the JAX "
            "backend with `keras.distribution.DataParallel`, or TensorFlow with a "
            "`tf.distribute` strategy (see docs/distributed.md)."
        )
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        raise ValueError(
            "keras_contrastive cannot train with torch.distributed (world size "
            f"{dist.get_world_size()}): Keras 3.15 has no multi-device `fit` for "
            "torch. "
            "Use the JAX or TensorFlow backend for multi-device training "
            "(see docs/distributed.md)."
        )
