"""The shared `keras.losses.Loss` plumbing of every loss class in this package."""

import keras
import numpy as np
from keras import ops

from keras_contrastive import distribute
from keras_contrastive._validation import (
    check_one_of,
    fail,
    fail_shapes,
    host_value,
    shown_as,
)
from keras_contrastive.losses._common import nan_unless, shape_of, to_float32

_MEAN = ("mean", "sum_over_batch_size", "mean_with_sample_weight")
_NONE = (None, "none")


class ContrastiveLossBase(keras.losses.Loss):
    """Base class: float32 casting, per-anchor weights, sample weights, reduction.

    Subclasses implement `compute_terms(y_true, y_pred)` returning
    `(values, weights)`: one value per anchor and its weight (`None` means all 1).
    The reduced loss is

        "mean" (default; "sum_over_batch_size" is treated the same):
            sum_i w_i v_i / sum_i w_i          (0, with zero gradients, if sum w = 0)
        "sum":  sum_i w_i v_i
        None / "none":  v_i (times `sample_weight` when given)

    where w_i is the anchor's weight times its `sample_weight`. Anchors that take
    no part (no positive, no valid triplet, ...) have v_i = 0 and w_i = 0, which is
    how the label-based losses reproduce their "mean over valid pairs/triplets"
    definitions exactly.

    NaN is never hidden: a NaN (or inf) anywhere in the inputs makes every value
    NaN (see `losses/_common.py`), and the mean is NaN also when every weight is
    0. `sample_weight` must be finite and >= 0: a `ValueError` when its values
    are visible in Python (NumPy, lists, eager tensors on the host); inside a
    compiled step (or on an accelerator, where a check would stall the device) a
    NaN, inf or negative weight makes the loss NaN instead.

    Under `tf.distribute` "mean" returns this replica's share of the mean over the
    global batch, sum_{i local} w_i v_i / sum_{i global} w_i: the replicas' values
    sum to the single-device loss (Keras' convention of scaling a loss for
    distribution, exact also when replicas hold different numbers of valid pairs).

    Inputs of any dtype are computed in float32 (also under a mixed-precision
    policy); the result is float32.
    """

    def __init__(self, name=None, reduction="mean", dtype=None):
        check_one_of("reduction", reduction, _MEAN + ("sum",) + _NONE)
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def compute_terms(self, y_true, y_pred):  # pragma: no cover - abstract
        raise NotImplementedError

    def call(self, y_true, y_pred):
        """Per-anchor values (what `reduction=None` returns)."""
        values, _ = self.compute_terms(y_true, y_pred)
        return values

    # Values per input row: 2 for the losses over concat(z_a, z_b) (NTXent), whose
    # N-length sample_weight is tiled over both halves.
    rows_per_sample = 1

    def _sample_weight(self, sample_weight, num_values):
        sample_weight = ops.reshape(to_float32(sample_weight), (-1,))
        n_w = sample_weight.shape[0]
        if n_w is not None and num_values is not None:
            if n_w == num_values:
                return sample_weight
            if n_w == 1:
                return ops.broadcast_to(sample_weight, (num_values,))
            if n_w * self.rows_per_sample == num_values:
                return ops.tile(sample_weight, (self.rows_per_sample,))
            fail_shapes(
                "sample_weight",
                f"have one entry per anchor ({num_values}) or per pair",
                {"sample_weight": shape_of(sample_weight)},
            )
        if self.rows_per_sample > 1:  # unknown batch size: the documented N-length
            return ops.tile(sample_weight, (self.rows_per_sample,))
        return sample_weight

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            values, weights = self.compute_terms(y_true, y_pred)
            values = to_float32(values)
            if sample_weight is not None:
                checked = check_sample_weight(sample_weight)
                sw = self._sample_weight(sample_weight, values.shape[0])
                if not checked:  # NaN unless every weight is finite and >= 0
                    values = values + nan_unless(
                        ops.logical_and(ops.isfinite(sw), sw >= 0.0)
                    )
                weights = sw if weights is None else weights * sw
            if self.reduction in _NONE:
                if sample_weight is not None:
                    return values * sw
                return values
            if weights is None:
                total = ops.sum(values)
                if self.reduction == "sum":
                    return total
                count = ops.cast(ops.shape(values)[0], "float32")
                count = distribute.sum_over_replicas(count)
                return total / ops.maximum(count, 1.0)
            total = ops.sum(values * weights)
            if self.reduction == "sum":
                return total
            # This replica's share of the global mean: the weights of every replica
            # in the denominator, so the replicas' values sum to the mean over the
            # global batch (Keras' own losses divide by the replica count instead,
            # which is the same when every replica has the same weight).
            denom = distribute.sum_over_replicas(ops.sum(weights))
            safe = ops.where(denom > 0, denom, 1.0)
            # No weight: 0 with zero gradients, or NaN when a value is NaN (0 * NaN).
            return ops.where(denom > 0, total / safe, total * 0.0)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


def check_sample_weight(sample_weight):
    """Raises unless `sample_weight`, when visible in Python, is finite and >= 0.

    Returns True when the values were checked, False when they are not visible
    (symbolic, or on an accelerator): the caller then guards inside the graph.
    """
    host = host_value(sample_weight, device_copy=False)
    if host is None:
        return False
    if host.dtype.kind not in "biuf":
        fail(
            "sample_weight",
            "numbers",
            shown_as(f"an array of dtype {host.dtype}"),
            TypeError,
        )
    host = host.astype(np.float64)
    bad = ~np.isfinite(host) | (host < 0)
    if np.any(bad):
        fail(
            "sample_weight",
            "finite and >= 0",
            shown_as(f"an array holding {host[bad].flat[0].item()!r}"),
            detail=f"{int(np.count_nonzero(bad))} of its {host.size} entries are "
            "NaN, inf or negative",
        )
    return True
