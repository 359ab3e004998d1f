"""Label-based metric losses, called `loss(labels, embeddings)`.

Pairs and triplets are formed inside the batch from integer labels (Keras' y_true,
y_pred order, so `model.compile(loss=TripletLoss())` with `model.fit(x, labels)`
works). Each functional form returns one value per row (anchor); each class reduces
them with per-anchor weights so that its mean is exactly the loss's definition.
Anchors without a valid pair or triplet get value 0 and weight 0, and a batch with no
valid pair or triplet at all gives a loss of 0 with zero gradients (never NaN).
"""

import keras
from keras import ops

from keras_contrastive import distribute
from keras_contrastive._validation import check_one_of
from keras_contrastive.losses._common import (
    BIG,
    MAX_SQUARED_DISTANCE,
    cap_squared,
    check_margin,
    check_min_rows,
    check_rank,
    check_same_shape,
    check_temperature,
    huge_scale,
    l2_normalize,
    label_inputs,
    label_masks,
    mask_columns_logits,
    non_finite_guard,
    rows_logsumexp,
    to_float32,
)
from keras_contrastive.losses.base import ContrastiveLossBase
from keras_contrastive.losses.similarity import pairwise_distances

_PACKAGE = "keras_contrastive"
# Stand-in for "no such distance": far beyond any real squared distance, finite.
_FAR = MAX_SQUARED_DISTANCE
_MINING = ("all", "hard", "semi-hard")


def _replica_pairs(labels, embeddings, squared):
    """Distances and label masks of this replica's rows against every replica's.

    Returns (d (n, N), positive mask, negative mask (n, N)); on one replica
    N = n and d is the exact square matrix (zero diagonal).
    """
    all_embeddings = distribute.gather(embeddings)
    offset = distribute.replica_offset(ops.shape(embeddings)[0])
    if distribute.num_replicas() == 1:
        d = pairwise_distances(embeddings, squared=squared)
    else:
        d = pairwise_distances(embeddings, all_embeddings, squared=squared)
    _, positive, negative = label_masks(labels, distribute.gather(labels), offset)
    return d, positive, negative


def _per_anchor_mean(total, count):
    """(total / count, count) with 0 where count == 0."""
    return total / ops.maximum(count, 1.0), count


# ----------------------------------------------------------------------------------
# Contrastive (Chopra et al. 2005)


def _contrastive_terms(labels, embeddings, margin):
    labels, embeddings, guard = label_inputs(labels, embeddings)
    d2, positive, negative = _replica_pairs(labels, embeddings, squared=True)
    pair = positive * d2 + negative * ops.relu(margin - d2)
    others = ops.sum(positive + negative, axis=1)  # N - 1 for every row
    values, count = _per_anchor_mean(ops.sum(pair, axis=1), others)
    return values + guard, count


def contrastive_loss(labels, embeddings, margin=1.0):
    """Contrastive loss over in-batch pairs (Chopra et al. 2005; Hadsell et al. 2006).

    For each pair (i, j), i != j, with D the Euclidean distance:

        L_ij = D_ij^2                      if y_i == y_j
        L_ij = max(0, margin - D_ij^2)     otherwise

    Row i's value is the mean of L_ij over its N - 1 partners; the mean of the rows
    is the mean over all unordered pairs (what `ContrastiveLoss` returns). A batch
    of one row has no pair: its value is 0.

    Args:
        labels: (N,) or (N, 1) integer labels.
        embeddings: (N, d).
        margin: >= 0, compared with the *squared* distance.

    Returns:
        (N,) float32 per-row values.

    Example:

    >>> import numpy as np
    >>> x = np.array([[0.0, 0.0], [0.0, 0.5], [3.0, 0.0]])
    >>> [round(float(v), 4) for v in contrastive_loss([0, 0, 1], x, margin=1.0)]
    [0.125, 0.125, 0.0]
    """
    margin = check_margin(margin)
    return _contrastive_terms(labels, embeddings, margin)[0]


# ----------------------------------------------------------------------------------
# Triplet (Schroff et al. 2015)


def triplet_margin(anchor, positive, negative, margin=1.0):
    """Triplet loss on explicit triplets, squared distances (Schroff et al. 2015).

        l_i = max(0, ||a_i - p_i||^2 - ||a_i - n_i||^2 + margin)

    Args:
        anchor, positive, negative: (N, d) each.
        margin: >= 0.

    Returns:
        (N,) float32 per-triplet values.

    Example:

    >>> import numpy as np
    >>> a = np.zeros((1, 2)); p = np.array([[1.0, 0.0]]); n = np.array([[0.0, 1.0]])
    >>> float(triplet_margin(a, p, n, margin=0.5)[0])
    0.5
    """
    margin = check_margin(margin)
    anchor, positive, negative = (to_float32(t) for t in (anchor, positive, negative))
    for t, name in ((anchor, "anchor"), (positive, "positive"), (negative, "negative")):
        check_rank(t, 2, name)
    check_same_shape(anchor, positive, "anchor", "positive")
    check_same_shape(anchor, negative, "anchor", "negative")
    check_min_rows(anchor, 1, "anchor")
    scale = ops.maximum(
        ops.maximum(huge_scale(anchor), huge_scale(positive)), huge_scale(negative)
    )
    a, p, n = anchor / scale, positive / scale, negative / scale
    # On rescaled rows the squares stay finite; scale^2 is applied last, capped.
    diff = ops.sum(ops.square(a - p), axis=1) - ops.sum(ops.square(a - n), axis=1)
    diff = cap_squared(diff, scale)
    guard = non_finite_guard(anchor, positive, negative)
    return ops.relu(diff + margin) + guard


def _sorted_rows(values, *companions):
    """Sorts each row of `values` ascending (stable); companions follow the order."""
    order = ops.argsort(values, axis=1)
    return [ops.take_along_axis(t, order, axis=1) for t in (values, *companions)]


def _triplet_all(d2, positive, negative, margin):
    """Per anchor: sum over (p, n) of max(0, d_ap - d_an + margin), and the count.

    O(N^2 log N) instead of materialising the (N, N, N) triplet cube: with
    x_p = d_ap + margin and y_n = d_an, sum_{p,n} max(0, x_p - y_n) is, over the row
    sorted jointly, sum over x of (#y before x) * x - (sum of y before x).
    """
    x = ops.where(positive > 0, d2 + margin, -_FAR)
    y = ops.where(negative > 0, d2, _FAR)
    zeros = ops.zeros_like(d2)
    # The y's come first, so a stable sort puts a y tied with an x before it (the
    # tie contributes x - y = 0 either way).
    values, is_y, is_x = _sorted_rows(
        ops.concatenate([y, x], axis=1),
        ops.concatenate([negative, zeros], axis=1),
        ops.concatenate([zeros, positive], axis=1),
    )
    count_before = ops.cumsum(is_y, axis=1)
    sum_before = ops.cumsum(values * is_y, axis=1)
    total = ops.sum(is_x * (count_before * values - sum_before), axis=1)
    count = ops.sum(positive, axis=1) * ops.sum(negative, axis=1)
    return total, count


def _triplet_hard(d2, positive, negative, margin):
    has_pos = ops.sum(positive, axis=1) > 0
    has_neg = ops.sum(negative, axis=1) > 0
    hardest_pos = ops.max(ops.where(positive > 0, d2, -1.0), axis=1)
    hardest_neg = ops.min(ops.where(negative > 0, d2, _FAR), axis=1)
    valid = ops.logical_and(has_pos, has_neg)
    value = ops.relu(
        ops.where(valid, hardest_pos, 0.0) - ops.where(valid, hardest_neg, 0.0) + margin
    )
    weight = ops.cast(valid, "float32")
    return value * weight, weight


def _triplet_semi_hard(d2, positive, negative, margin):
    """FaceNet's semi-hard mining, per (anchor, positive) pair.

    The negative is the closest one farther than the positive (d_an > d_ap), used
    when it is within the margin (d_an < d_ap + margin); otherwise the hardest
    (closest) negative. Found by sorting each anchor's row once.
    """
    num_neg = ops.sum(negative, axis=1, keepdims=True)
    (sorted_neg,) = _sorted_rows(ops.where(negative > 0, d2, _FAR))
    hardest = sorted_neg[:, :1]
    x = ops.where(positive > 0, d2, -_FAR)
    zeros = ops.zeros_like(d2)
    values, is_y, is_x = _sorted_rows(
        ops.concatenate([ops.where(negative > 0, d2, _FAR), x], axis=1),
        ops.concatenate([negative, zeros], axis=1),
        ops.concatenate([zeros, positive], axis=1),
    )
    # Number of negatives <= each positive's distance (ties sort the negative first,
    # so a negative at exactly d_ap is not "farther").
    below = ops.cumsum(is_y, axis=1)
    last = ops.shape(d2)[1] - 1
    index = ops.cast(ops.minimum(below, ops.cast(last, "float32")), "int32")
    next_neg = ops.take_along_axis(sorted_neg, index, axis=1)
    semi = ops.logical_and(below < num_neg, next_neg < values + margin)
    chosen = ops.where(semi, next_neg, hardest)
    # Rows without negatives: chosen = _FAR, the hinge is 0; also masked below.
    term = is_x * ops.relu(ops.where(is_x > 0, values, 0.0) - chosen + margin)
    has_neg = ops.cast(num_neg[:, 0] > 0, "float32")
    count = ops.sum(positive, axis=1) * has_neg
    return ops.sum(term, axis=1) * has_neg, count


def _triplet_terms(labels, embeddings, margin, mining):
    labels, embeddings, guard = label_inputs(labels, embeddings)
    d2, positive, negative = _replica_pairs(labels, embeddings, squared=True)
    if mining == "all":
        values, count = _per_anchor_mean(*_triplet_all(d2, positive, negative, margin))
    elif mining == "hard":
        values, count = _triplet_hard(d2, positive, negative, margin)
    else:
        values, count = _per_anchor_mean(
            *_triplet_semi_hard(d2, positive, negative, margin)
        )
    return values + guard, count


def _check_mining(mining):
    return check_one_of("mining", mining, _MINING)


def triplet_loss(labels, embeddings, margin=1.0, mining="all"):
    """Batch triplet loss (Schroff et al. 2015, eq. 1, squared distances).

    For a triplet (a, p, n) with y_p == y_a, p != a, y_n != y_a:
    max(0, D_ap^2 - D_an^2 + margin).

    * `mining="all"`: row a's value is the mean over its valid triplets; weighted by
      their number (as `TripletLoss` does) the rows give the mean over every valid
      triplet. Computed by sorting, in O(N^2 log N) time and O(N^2) memory.
    * `"hard"`: row a's value uses its farthest positive and closest negative; rows
      without both are 0 (and weight 0 in `TripletLoss`).
    * `"semi-hard"` (FaceNet): for each positive, the closest negative farther than
      it if that one lies within the margin, else the hardest negative; row a's
      value is the mean over its positives (weight: their number).

    Args:
        labels: (N,) or (N, 1) integer labels.
        embeddings: (N, d).
        margin: >= 0.
        mining: "all", "hard" or "semi-hard".

    Returns:
        (N,) float32 per-anchor values (0 for anchors without a valid triplet).

    Example:

    >>> import numpy as np
    >>> x = np.array([[0.0, 0.0], [0.0, 1.0], [0.5, 0.0]])
    >>> [round(float(v), 4) for v in triplet_loss([0, 0, 1], x, margin=1.0)]
    [1.75, 0.75, 0.0]
    """
    margin = check_margin(margin)
    mining = _check_mining(mining)
    return _triplet_terms(labels, embeddings, margin, mining)[0]


# ----------------------------------------------------------------------------------
# Lifted structure (Song et al. 2016)


def _lifted_terms(labels, embeddings, margin):
    labels, embeddings, guard = label_inputs(labels, embeddings)
    d, positive, negative = _replica_pairs(labels, embeddings, squared=False)
    # L_i = log sum_{k: y_k != y_i} exp(margin - D_ik); -BIG (finite) if no negative.
    lse = rows_logsumexp(ops.where(negative > 0, margin - d, -BIG))
    # J_ij needs L_j of every candidate j: each replica computes its rows' L.
    j = d + ops.logaddexp(lse[:, None], distribute.gather(lse)[None, :])
    term = positive * ops.square(ops.relu(ops.where(positive > 0, j, 0.0)))
    values, count = _per_anchor_mean(
        0.5 * ops.sum(term, axis=1), ops.sum(positive, axis=1)
    )
    return values + guard, count


def lifted_structure_loss(labels, embeddings, margin=1.0):
    """Lifted structured loss (Song et al. 2016, eq. 4), D unsquared.

    For each positive pair (i, j):

        J_ij = D_ij + log( sum_{k: y_k != y_i} exp(margin - D_ik)
                           + sum_{l: y_l != y_j} exp(margin - D_jl) )

    and the loss is sum over unordered positive pairs of max(0, J_ij)^2 / (2 |P|).
    Row i's value is mean_{j in P(i)} max(0, J_ij)^2 / 2; weighted by |P(i)| (as
    `LiftedStructureLoss` does) the rows give exactly that loss.

    Args:
        labels: (N,) or (N, 1) integer labels.
        embeddings: (N, d).
        margin: >= 0.

    Returns:
        (N,) float32 per-row values (0 for rows without a positive).

    Example:

    >>> import numpy as np
    >>> x = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    >>> tuple(lifted_structure_loss([0, 0, 1], x).shape)
    (3,)
    """
    margin = check_margin(margin)
    return _lifted_terms(labels, embeddings, margin)[0]


# ----------------------------------------------------------------------------------
# Supervised contrastive (Khosla et al. 2020)


def _supcon_terms(labels, embeddings, temperature):
    labels, embeddings, guard = label_inputs(labels, embeddings)
    z = l2_normalize(embeddings)
    all_z = distribute.gather(z)
    offset = distribute.replica_offset(ops.shape(z)[0])
    logits = ops.matmul(z * (1.0 / temperature), ops.transpose(all_z))
    _, positive, _ = label_masks(labels, distribute.gather(labels), offset)
    num_pos = ops.sum(positive, axis=1)
    mean_pos = ops.sum(positive * logits, axis=1) / ops.maximum(num_pos, 1.0)
    if distribute.num_replicas() == 1:
        lse = rows_logsumexp(logits, mask_diagonal=True)
    else:
        own = ops.arange(ops.shape(z)[0], dtype="int32") + offset
        lse = rows_logsumexp(mask_columns_logits(logits, own))
    weight = ops.cast(num_pos > 0, "float32")
    return (lse - mean_pos) * weight + guard, weight


def supervised_contrastive(labels, embeddings, temperature=0.1):
    """Supervised contrastive loss, L_out (Khosla et al. 2020).

    With s_ij = cos(z_i, z_j) / tau and P(i) the other rows sharing i's label:

        l_i = -1/|P(i)| sum_{p in P(i)} ( s_ip - log sum_{k != i} exp(s_ik) )

    for anchors with at least one positive (others give 0); `SupervisedContrastive`
    averages over those anchors. Pass all views of a batch as rows, with their
    labels repeated.

    Args:
        labels: (N,) or (N, 1) integer labels.
        embeddings: (N, d).
        temperature: tau > 0.

    Returns:
        (N,) float32 per-anchor values.

    Example:

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(6, 4))
    >>> tuple(supervised_contrastive([0, 0, 1, 1, 2, 2], x).shape)
    (6,)
    """
    temperature = check_temperature(temperature)
    return _supcon_terms(labels, embeddings, temperature)[0]


# ----------------------------------------------------------------------------------
# Classes


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ContrastiveLoss(ContrastiveLossBase):
    """Contrastive loss (Chopra et al. 2005), called `loss(labels, embeddings)`.

    Over all unordered in-batch pairs i < j: D_ij^2 if same label, else
    max(0, margin - D_ij^2); mean over all pairs (0 for a batch of one row).

    Args:
        margin: >= 0 (default 1.0).
        reduction: "mean" (default), "sum", or None for per-row values.
        name: optional name.

    Example:

    >>> import numpy as np
    >>> x = np.array([[0.0, 0.0], [0.0, 0.5], [3.0, 0.0]])
    >>> round(float(ContrastiveLoss(margin=1.0)([0, 0, 1], x)), 4)
    0.0833
    """

    def __init__(
        self, margin=1.0, reduction="mean", name="contrastive_loss", dtype=None
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = check_margin(margin)

    def compute_terms(self, y_true, y_pred):
        return _contrastive_terms(y_true, y_pred, self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TripletLoss(ContrastiveLossBase):
    """Batch triplet loss with squared distances, called `loss(labels, embeddings)`.

    max(0, D_ap^2 - D_an^2 + margin) with
    `mining="all"`: mean over every valid triplet (a != p same label, n other label);
    `"hard"`: per anchor the farthest positive and closest negative, mean over the
    anchors that have both; `"semi-hard"`: FaceNet's semi-hard negatives (farther
    than the positive but within the margin; the hardest negative when none is),
    mean over the (anchor, positive) pairs whose anchor has a negative. No valid
    triplet in the batch gives 0.

    Args:
        margin: >= 0 (default 1.0).
        mining: "all" (default), "hard" or "semi-hard".
        reduction: "mean" (default), "sum", or None for per-anchor values.
        name: optional name.

    Example:

    >>> import numpy as np
    >>> x = np.array([[0.0, 0.0], [0.0, 1.0], [0.5, 0.0]])
    >>> float(TripletLoss(margin=1.0)([0, 0, 1], x))
    1.25
    """

    def __init__(
        self,
        margin=1.0,
        mining="all",
        reduction="mean",
        name="triplet_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = check_margin(margin)
        self.mining = _check_mining(mining)

    def compute_terms(self, y_true, y_pred):
        return _triplet_terms(y_true, y_pred, self.margin, self.mining)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "mining": self.mining}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LiftedStructureLoss(ContrastiveLossBase):
    """Lifted structured loss (Song et al. 2016), D unsquared, `loss(labels, emb)`.

    J_ij = D_ij + log(sum_{k: y_k != y_i} exp(margin - D_ik)
                      + sum_{l: y_l != y_j} exp(margin - D_jl))
    for each unordered positive pair; loss = sum max(0, J_ij)^2 / (2 |P|); 0 when
    the batch has no positive pair.

    Args:
        margin: >= 0 (default 1.0).
        reduction: "mean" (default), "sum", or None for per-row values.
        name: optional name.

    Example:

    >>> import numpy as np
    >>> x = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    >>> float(LiftedStructureLoss()([0, 1, 2], x))
    0.0
    """

    def __init__(
        self, margin=1.0, reduction="mean", name="lifted_structure_loss", dtype=None
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = check_margin(margin)

    def compute_terms(self, y_true, y_pred):
        return _lifted_terms(y_true, y_pred, self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SupervisedContrastive(ContrastiveLossBase):
    """Supervised contrastive loss L_out (Khosla et al. 2020), `loss(labels, emb)`.

    For each anchor with at least one positive, minus the mean over its positives of
    cos/tau - logsumexp over all other rows of cos/tau; mean over those anchors
    (0 when no anchor has a positive).

    Args:
        temperature: tau > 0 (default 0.1).
        reduction: "mean" (default), "sum", or None for per-anchor values.
        name: optional name.

    Example:

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(6, 4))
    >>> float(SupervisedContrastive(0.1)([0, 0, 1, 1, 2, 2], x)) > 0
    True
    """

    def __init__(
        self,
        temperature=0.1,
        reduction="mean",
        name="supervised_contrastive",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = check_temperature(temperature)

    def compute_terms(self, y_true, y_pred):
        return _supcon_terms(y_true, y_pred, self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}
