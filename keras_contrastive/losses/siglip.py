"""SigLIP's pairwise sigmoid loss (Zhai et al. 2023), called `loss(x, y)`.

Every (image, text) pair of the batch is an independent binary classification:
matching pairs (the diagonal) are positives, every other pair a negative. Under
`tf.distribute` each replica's images are compared with the texts of every replica
(`keras_contrastive.distribute.gather`), positives offset by `replica_offset`, as
the other view-pair losses do.
"""

import keras
from keras import ops

from keras_contrastive import distribute
from keras_contrastive._validation import fail_shapes
from keras_contrastive.losses._common import (
    check_logit_number,
    is_tensor,
    l2_normalize,
    non_finite_guard,
    shape_of,
    to_float32,
    view_pair_inputs,
)
from keras_contrastive.losses.base import ContrastiveLossBase

_PACKAGE = "keras_contrastive"


def _check_scalar(name, value, positive):
    """A Python number checked as a float, or a tensor holding one value as a
    float32 scalar tensor (a learnable variable stays differentiable)."""
    if not is_tensor(value):
        return check_logit_number(value, name, positive=positive)
    tensor = to_float32(value)
    shape = shape_of(tensor)
    if any(d is not None and d != 1 for d in shape):
        fail_shapes(name, "be a number or a tensor with one value", {name: shape})
    return ops.reshape(tensor, ()) if shape else tensor


def _check_scale_and_bias(logit_scale, logit_bias):
    return (
        _check_scalar("logit_scale", logit_scale, positive=True),
        _check_scalar("logit_bias", logit_bias, positive=False),
    )


def _siglip(x, y, logit_scale, logit_bias):
    x, y = view_pair_inputs(x, y, "x", "y", min_rows=1)
    # The scale multiplies the n x d rows rather than the n x N logits.
    a = l2_normalize(x) * logit_scale
    b = l2_normalize(y)
    all_b = distribute.gather(b)
    offset = distribute.replica_offset(ops.shape(x)[0])
    logits = ops.matmul(a, ops.transpose(all_b)) + logit_bias
    n, total = ops.shape(logits)[0], ops.shape(logits)[1]
    positives = ops.one_hot(ops.arange(n, dtype="int32") + offset, total)
    # -log sigmoid(z * logit) = softplus(-z * logit), with z = +1 on the positives
    # and -1 elsewhere: -z * logit flips the sign of the positive column only.
    values = ops.sum(ops.softplus(logits * (1.0 - 2.0 * positives)), axis=1)
    return values + non_finite_guard(x, y)


def siglip_loss(x, y, logit_scale=10.0, logit_bias=-10.0):
    """SigLIP's sigmoid loss (Zhai et al. 2023; its pseudo-code: Algorithm 1).

    With x_i, y_j L2-normalised, t = `logit_scale` and b = `logit_bias`:

        logits_ij = t * <x_i, y_j> + b
        z_ij      = +1 if i == j else -1
        l_i       = -sum_j log sigmoid(z_ij * logits_ij)

    The paper's loss, -1/N sum_i sum_j log sigmoid(z_ij logits_ij), is the mean of
    the l_i over the N anchors (what `SigLIPLoss` returns). -log sigmoid(u) is
    computed as softplus(-u), finite and accurate at any scale.

    The paper learns t' with t = exp(t') and b, initialised to t' = log 10
    (t = 10) and b = -10 (the defaults here). Pass the scale itself: in a model with
    a learnable `log_scale` variable, `logit_scale=ops.exp(log_scale)`; tensors and
    variables holding one value are used as they are (and receive gradients).

    Under `tf.distribute` each replica computes the values of its own images
    against the texts of every replica (gathered; positives offset by
    `replica_offset`): the mean over the replicas' anchors is the loss of the
    global batch. On one replica (and under JAX `DataParallel`) the gather is the
    identity.

    Args:
        x: (N, d) image embeddings (the anchors).
        y: (N, d) text embeddings; row i pairs with row i of `x`.
        logit_scale: t > 0, a number or a one-value tensor (default 10).
        logit_bias: b, a finite number or a one-value tensor (default -10).

    Returns:
        (N,) float32 per-anchor values l_i.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(4, 8))
    >>> values = siglip_loss(x, x + 0.1 * rng.normal(size=(4, 8)))
    >>> tuple(values.shape)
    (4,)
    >>> # Orthonormal matching pairs: each row has one positive with logit 0 and
    >>> # three negatives with logit -10: l_i = log 2 + 3 log(1 + exp(-10)).
    >>> eye = np.eye(4)
    >>> round(float(siglip_loss(eye, eye)[0]), 5)
    0.69328
    """
    logit_scale, logit_bias = _check_scale_and_bias(logit_scale, logit_bias)
    return _siglip(x, y, logit_scale, logit_bias)


def _config_value(value):
    """A float for get_config: numbers as they are, tensors as their value now."""
    if is_tensor(value):
        return ops.convert_to_numpy(value).item()
    return value


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SigLIPLoss(ContrastiveLossBase):
    """SigLIP's sigmoid loss (Zhai et al. 2023), called `loss(x, y)`.

    logits_ij = t <x_i, y_j> + b on L2-normalised rows; the mean over the N anchors
    of l_i = -sum_j log sigmoid(z_ij logits_ij), z_ij = 1 if i == j else -1, which
    is the paper's -1/N sum_ij log sigmoid(z_ij logits_ij). See `siglip_loss`.

    Args:
        logit_scale: t > 0 (default 10, the paper's initial exp(t')). A number, or
            a tensor / variable with one value: a variable is read at every call
            (a tensor such as `ops.exp(log_scale)` is computed once, when passed:
            for a learnable log-scale call `siglip_loss` in the model's loss
            code instead); `get_config` records the current value.
        logit_bias: b (default -10, the paper's initial bias); number or one-value
            tensor / variable as `logit_scale`.
        reduction: "mean" (default), "sum", or None for the (N,) per-anchor values.
        name: optional name.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(4, 8))
    >>> loss = SigLIPLoss(logit_scale=10.0, logit_bias=-10.0)
    >>> float(loss(x, x + 0.01)) < float(loss(x, rng.normal(size=(4, 8))))
    True
    """

    def __init__(
        self,
        logit_scale=10.0,
        logit_bias=-10.0,
        reduction="mean",
        name="siglip_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        scale, bias = _check_scale_and_bias(logit_scale, logit_bias)
        # Tensors are kept as given: a variable is read again at every call.
        self.logit_scale = logit_scale if is_tensor(logit_scale) else scale
        self.logit_bias = logit_bias if is_tensor(logit_bias) else bias

    def compute_terms(self, y_true, y_pred):
        scale, bias = _check_scale_and_bias(self.logit_scale, self.logit_bias)
        return _siglip(y_true, y_pred, scale, bias), None

    def get_config(self):
        return {
            **super().get_config(),
            "logit_scale": _config_value(self.logit_scale),
            "logit_bias": _config_value(self.logit_bias),
        }
