"""Batch norm over groups of rows: one device behaving like several.

MoCo (He et al. 2020, sec. 3.3) shuffles the keys across devices so that a query
and its key never share batch-norm statistics, which would let the model cheat the
pretext task. On one device the same effect comes from normalising separate groups
of the batch (and the keys of a permuted batch).
"""

from keras import ops


def _chunk_bounds(n, groups):
    """Boundaries of `groups` contiguous chunks of n rows (sizes differ by <= 1)."""
    return [(i * n) // groups for i in range(groups + 1)]


def encode_in_groups(network, x, groups, training, permutation=None):
    """`network(x)` with batch-norm statistics computed per group of rows.

    The batch (optionally reordered by `permutation`) is cut into `groups`
    contiguous chunks, each a separate call, and the results are put back in the
    original order. One device then behaves like `groups` devices with per-device
    batch norm: the single-device equivalent of MoCo's shuffled BN.
    """
    if groups == 1:
        return network(x, training=training)
    if permutation is not None:
        x = ops.take(x, permutation, axis=0)
    # A tensor when the batch size is dynamic (TensorFlow graphs): slicing works.
    bounds = _chunk_bounds(ops.shape(x)[0], groups)
    parts = [
        network(x[bounds[i] : bounds[i + 1]], training=training) for i in range(groups)
    ]
    out = ops.concatenate(parts, axis=0)
    if permutation is not None:
        out = ops.take(out, ops.argsort(permutation), axis=0)
    return out
