"""The one place that knows about replicas.

Everything else in the library (losses, methods, the training step) calls these
functions and never asks which backend or strategy it runs under:

- `num_replicas()`: how many replicas run the training step *separately*, each on
  its own slice of the global batch (TensorFlow `tf.distribute` replicas in sync);
  1 on a single device and under JAX `keras.distribution.DataParallel`, whose step
  sees the global batch as one (sharded) array.
- `replica_id()`: this replica's index (a scalar tensor under `tf.distribute`).
- `replica_offset(local_batch_size)`: where this replica's rows start in `gather`.
- `gather(x)`: every replica's rows, concatenated in replica order, with gradients
  flowing back to the replica that owns each row.
- `replica_seed(seed_generator)`: a seed for a random draw that differs on every
  replica (augmentation, MoCHi), the generator itself on one replica.
- `sum_over_replicas(x)`: a count or normaliser summed over the replicas.
- `scale_loss(loss)`: the loss each replica differentiates, so that the
  all-reduced (summed) gradients are those of the global mean loss.
- `check_supported()`: raises a clear error where the backend cannot run the
  requested distribution (PyTorch multi-device `fit` is not in Keras 3.15).
- `scaled_learning_rate(base, global_batch_size, rule)` (the one of
  `keras_contrastive.optimizers`, offered here too): SimCLR's linear or
  square-root learning-rate scaling with the global batch.
- `synchronize_batch_norm(model)`: a copy of a Functional or Sequential model whose
  batch norms use global-batch statistics under `tf.distribute`.
"""

from keras_contrastive.distribute.replicas import (
    check_supported,
    gather,
    num_replicas,
    replica_id,
    replica_offset,
    replica_seed,
    scale_loss,
    sum_over_replicas,
)
from keras_contrastive.distribute.scaling import (
    scaled_learning_rate,
    synchronize_batch_norm,
)

__all__ = [
    "check_supported",
    "gather",
    "num_replicas",
    "replica_id",
    "replica_offset",
    "replica_seed",
    "scale_loss",
    "scaled_learning_rate",
    "sum_over_replicas",
    "synchronize_batch_norm",
]
