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


class _DrawnSeed(keras.random.SeedGenerator):
    """A seed already drawn, in the form `keras.random` ops accept.

    Made per call inside a step; it owns no state variable (the generator it was
    drawn from does), so nothing is tracked or saved.
    """

    def __init__(self, value):  # no SeedGenerator state: deliberately no super()
        self._value = value

    def next(self, ordered=True):
        return self._value


# Separates the replicas' streams: replica r seeds its draws with the generator's
# seed + r * _REPLICA_STRIDE (in the half of the seed that the counter never moves).
_REPLICA_STRIDE = 7919


def replica_seed(seed_generator):
    """The seed of a `keras.random` draw that differs on every replica.

    Seed generators are model state, replicated under `tf.distribute`, so every
    replica would draw the *same* numbers for its own rows (replica 0's row 0 and
    replica 1's row 0 would get the same crop). This folds the replica's index into
    the seed. On one replica it returns `seed_generator` itself, so single-device
    draws are unchanged.

    Args:
        seed_generator: a `keras.random.SeedGenerator`; advanced by one draw.

    Returns:
        Something to pass as `seed=` to a `keras.random` op.
    """
    if num_replicas() == 1:
        return seed_generator
    seed = seed_generator.next()
    shift = ops.cast(replica_id(), seed.dtype) * _REPLICA_STRIDE
    return _DrawnSeed(seed + ops.stack([shift, ops.zeros_like(shift)]))


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
