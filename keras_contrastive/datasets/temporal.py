"""Positive pairs from time: neighbouring steps or windows of the same sequence.

Time-contrastive learning (Sermanet et al. 2018, "Time-Contrastive Networks",
sec. 3; the temporal coherence behind Oord et al. 2018's CPC): what happens a
few steps apart in one sequence (frames of a video, windows of a sensor
recording, sentences of a document) is a positive pair; what happens far away,
or in another sequence, is a negative.
"""

import math

import keras
import numpy as np

from keras_contrastive import _validation as v


def _check_sequences(sequences):
    """The sequences as a list of arrays with equal trailing shapes."""
    if isinstance(sequences, np.ndarray):
        if sequences.ndim < 2:
            v.fail(
                "sequences",
                "an array of shape (num_sequences, length, ...) or a list of "
                "arrays of shape (length, ...)",
                sequences.shape,
                received_as="sequences.shape",
            )
        items = list(sequences)
    elif isinstance(sequences, (list, tuple)):
        items = [np.asarray(s) for s in sequences]
    else:
        v.fail(
            "sequences",
            "a NumPy array or a list of arrays",
            v.summarize(sequences),
            TypeError,
        )
    if not items:
        v.fail("sequences", "a non-empty collection of sequences", sequences)
    trailing = items[0].shape[1:]
    for i, item in enumerate(items):
        if item.ndim < 1 or item.shape[1:] != trailing:
            v.fail(
                f"sequences[{i}]",
                f"an array of shape (length, *{trailing}) like sequences[0]",
                item.shape,
                received_as=f"sequences[{i}].shape",
            )
        if item.dtype.kind not in "biuf":
            v.fail(
                f"sequences[{i}]",
                "numeric",
                v.shown_as(f"an array of dtype {item.dtype}"),
                TypeError,
            )
    return items


def _check_offsets(window, max_offset, min_negative_offset, num_negatives):
    if window is not None:
        window = v.check_positive_int("window", window)
    max_offset = v.check_positive_int("max_offset", max_offset)
    num_negatives = v.check_int("num_negatives", num_negatives, minimum=0)
    if min_negative_offset is not None:
        min_negative_offset = v.check_int(
            "min_negative_offset", min_negative_offset, minimum=max_offset + 1
        )
    return window, max_offset, min_negative_offset, num_negatives


def _num_starts(items, window):
    """How many windows (steps when `window` is None) each sequence holds."""
    size = 1 if window is None else window
    counts = np.array([len(item) - size + 1 for item in items], dtype="int64")
    for i, count in enumerate(counts):
        if count < 2:
            what = "steps" if window is None else f"steps (window={window})"
            v.fail(
                f"sequences[{i}]",
                f"a sequence of at least {size + 1} {what}, so that an anchor "
                "has a positive beside it",
                len(items[i]),
                received_as=f"len(sequences[{i}])",
            )
    return counts


def _check_negatives_exist(counts, min_negative_offset, num_negatives):
    if num_negatives == 0 or len(counts) > 1:
        return
    if min_negative_offset is None:
        v.fail(
            "sequences",
            "at least 2 sequences for negatives from other sequences (or set "
            "`min_negative_offset` for negatives far away in the same one)",
            1,
            received_as="len(sequences)",
        )
    if counts[0] < 2 * min_negative_offset:
        v.fail(
            "min_negative_offset",
            f"at most {int(counts[0]) // 2} for a single sequence of "
            f"{int(counts[0])} positions (every anchor needs a position at least "
            "`min_negative_offset` away)",
            min_negative_offset,
        )


def sample_temporal_positions(
    counts, num_pairs, max_offset, num_negatives, min_negative_offset, rng
):
    """Index arrays of anchors, positives and negatives.

    Args:
        counts: (num_sequences,) int, the number of positions (window starts)
            of each sequence, each at least 2.
        num_pairs, max_offset, num_negatives, min_negative_offset: as in
            `temporal_pairs`.
        rng: a `numpy.random.Generator`.

    Returns:
        A dict of int64 arrays: `anchor_sequence`, `anchor_start`,
        `positive_start` (same sequence as the anchor), each (num_pairs,), and
        with negatives `negative_sequence`, `negative_start`, each
        (num_pairs, num_negatives).
    """
    counts = np.asarray(counts, dtype="int64")
    firsts = np.concatenate([[0], np.cumsum(counts)])
    total = int(firsts[-1])
    # Anchors: uniform over every (sequence, start) position.
    flat = rng.integers(0, total, num_pairs)
    sequence = np.searchsorted(firsts, flat, side="right") - 1
    start = flat - firsts[sequence]
    n = counts[sequence]
    # Positives: uniform over the other starts within max_offset, in bounds.
    low = np.maximum(0, start - max_offset)
    high = np.minimum(n - 1, start + max_offset)
    positive = low + rng.integers(0, high - low)  # high - low >= 1 other starts
    positive = positive + (positive >= start)
    positions = {
        "anchor_sequence": sequence,
        "anchor_start": start,
        "positive_start": positive,
    }
    if not num_negatives:
        return positions
    seq = sequence[:, None]
    anchor = start[:, None]
    n = n[:, None]
    gap = 0 if min_negative_offset is None else min_negative_offset
    if min_negative_offset is None:
        left = right = np.zeros_like(anchor)
    else:
        left = np.maximum(0, anchor - min_negative_offset + 1)
        right = np.maximum(0, n - anchor - min_negative_offset)
    others = total - n
    draw = rng.integers(0, others + left + right, (num_pairs, num_negatives))
    # Far starts of the anchor's own sequence: [0, left) and the last `right`.
    own = draw < left + right
    own_start = np.where(draw < left, draw, anchor + gap + (draw - left))
    # Else a position of another sequence: skip the anchor's own block.
    other = draw - left - right
    other = other + (other >= firsts[seq]) * n
    other_sequence = np.searchsorted(firsts, other, side="right") - 1
    other_start = other - firsts[other_sequence]
    positions["negative_sequence"] = np.where(
        own, np.broadcast_to(seq, draw.shape), other_sequence
    )
    positions["negative_start"] = np.where(own, own_start, other_start)
    return positions


def _take(items, sequence, start, window):
    """Stacks the steps or windows at (sequence, start) pairs of any shape."""
    shape = np.shape(sequence)
    sequence, start = np.ravel(sequence), np.ravel(start)
    if window is None:
        rows = [items[s][t] for s, t in zip(sequence, start)]
    else:
        rows = [items[s][t : t + window] for s, t in zip(sequence, start)]
    out = np.stack(rows) if rows else np.zeros((0,) + items[0].shape[1:])
    return out.reshape(shape + out.shape[1:])


def temporal_pairs(
    sequences,
    num_pairs,
    max_offset,
    window=None,
    num_negatives=0,
    min_negative_offset=None,
    seed=None,
):
    """Samples time-contrastive pairs: anchors with positives a few steps away.

    Time-contrastive learning (Sermanet et al. 2018, "Time-Contrastive
    Networks: Self-Supervised Learning from Video", sec. 3.2: single-view TCN)
    takes as a positive what happens close in time to the anchor, and as
    negatives what happens far away in the same sequence or in other sequences.
    The anchors and positives feed any view-pair loss
    (`keras_contrastive.losses.info_nce`, `nt_xent`, ...: row i of the anchors
    against row i of the positives, the other rows as in-batch negatives), and
    the negatives, when asked, a loss with explicit negatives (`info_nce`'s
    `negatives`, `triplet_margin`).

    An item is a step `sequences[i][t]` (`window=None`: a frame, a sentence
    embedding) or a window `sequences[i][t : t + window]` (a stretch of a time
    series). With `n_i` the number of items of sequence i (`length_i` steps, or
    `length_i - window + 1` windows):

    - anchors (i, t) are uniform over every position of every sequence (longer
      sequences give more anchors);
    - the positive of (i, t) is (i, s), uniform over the starts with
      `1 <= |s - t| <= max_offset` inside the sequence;
    - each of `num_negatives` negatives is uniform over every position of the
      other sequences and, when `min_negative_offset` is set, the positions
      (i, s) of the anchor's own sequence with `|s - t| >= min_negative_offset`
      (which must exceed `max_offset`).

    Args:
        sequences: an array `(num_sequences, length, ...)`, or a list of arrays
            `(length_i, ...)` of varying lengths and equal trailing shapes.
        num_pairs: how many (anchor, positive) pairs to draw.
        max_offset: the largest step distance between an anchor and its
            positive (window starts, for windows).
        window: `None` (items are single steps) or the window length in steps.
        num_negatives: negatives per anchor (0: none returned; in-batch
            negatives of a view-pair loss need none).
        min_negative_offset: `None` (negatives only from other sequences) or the
            smallest step distance of a negative from the same sequence.
        seed: an int or None (NumPy's fresh entropy).

    Returns:
        `(anchors, positives)`, each `(num_pairs, ...)` with the item shape
        (`(window, ...)` for windows); with `num_negatives > 0`,
        `(anchors, positives, negatives)`, negatives
        `(num_pairs, num_negatives, ...)`. Dtypes are the sequences'.

    Raises:
        ValueError: a sequence with fewer than two items (shorter than
            `window + 1` steps), a bad offset, or no possible negative (one
            sequence and `min_negative_offset` None or more than half of it).
        TypeError: arguments of the wrong type.

    Example:

    >>> import numpy as np
    >>> series = np.random.normal(size=(8, 100, 3)).astype("float32")
    >>> anchors, positives = temporal_pairs(
    ...     series, num_pairs=32, max_offset=5, window=16, seed=0
    ... )
    >>> anchors.shape, positives.shape
    ((32, 16, 3), (32, 16, 3))
    """
    items = _check_sequences(sequences)
    num_pairs = v.check_positive_int("num_pairs", num_pairs)
    window, max_offset, min_negative_offset, num_negatives = _check_offsets(
        window, max_offset, min_negative_offset, num_negatives
    )
    counts = _num_starts(items, window)
    _check_negatives_exist(counts, min_negative_offset, num_negatives)
    rng = np.random.default_rng(v.check_seed("seed", seed))
    return _draw(
        items,
        counts,
        num_pairs,
        max_offset,
        window,
        num_negatives,
        min_negative_offset,
        rng,
    )


def _draw(items, counts, num_pairs, max_offset, window, num_negatives, min_offset, rng):
    p = sample_temporal_positions(
        counts, num_pairs, max_offset, num_negatives, min_offset, rng
    )
    anchors = _take(items, p["anchor_sequence"], p["anchor_start"], window)
    positives = _take(items, p["anchor_sequence"], p["positive_start"], window)
    if not num_negatives:
        return anchors, positives
    negatives = _take(items, p["negative_sequence"], p["negative_start"], window)
    return anchors, positives, negatives


class TemporalPairs(keras.utils.PyDataset):
    """Batches of fresh time-contrastive pairs: a dataset for `fit` on any backend.

    Each batch is drawn by `temporal_pairs` (Sermanet et al. 2018; see there
    for the sampling) from its own seed, `(seed, epoch, batch index)`, so the
    batches do not depend on the order they are asked for (Keras' shuffling,
    worker processes) and a seeded run repeats exactly; every epoch draws new
    pairs. Each item is a dict `{"anchor": (batch, ...), "positive": (batch,
    ...)}` (and `"negative": (batch, num_negatives, ...)` with negatives), the
    column names `SBERT`'s pairs use; a method reads them in its
    `forward_pass`. For `tf.data`, wrap the arrays of `temporal_pairs` with
    `tf.data.Dataset.from_tensor_slices`.

    Args:
        sequences: as in `temporal_pairs`.
        batch_size: pairs per batch.
        steps_per_epoch: batches per epoch (default: about one anchor per
            position, `ceil(positions / batch_size)`).
        max_offset, window, num_negatives, min_negative_offset: as in
            `temporal_pairs`.
        seed: int or None.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of
            `keras.utils.PyDataset`.

    Example:

    >>> import numpy as np
    >>> series = np.random.normal(size=(8, 100, 3)).astype("float32")
    >>> data = TemporalPairs(series, batch_size=16, max_offset=4, window=10, seed=0)
    >>> batch = data[0]
    >>> batch["anchor"].shape, batch["positive"].shape, len(data)
    ((16, 10, 3), (16, 10, 3), 46)
    """

    def __init__(
        self,
        sequences,
        batch_size=32,
        max_offset=1,
        window=None,
        num_negatives=0,
        min_negative_offset=None,
        steps_per_epoch=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.items = _check_sequences(sequences)
        self.batch_size = v.check_positive_int("batch_size", batch_size)
        (
            self.window,
            self.max_offset,
            self.min_negative_offset,
            self.num_negatives,
        ) = _check_offsets(window, max_offset, min_negative_offset, num_negatives)
        self.counts = _num_starts(self.items, self.window)
        _check_negatives_exist(self.counts, self.min_negative_offset, num_negatives)
        if steps_per_epoch is None:
            steps_per_epoch = math.ceil(int(self.counts.sum()) / self.batch_size)
        self.steps_per_epoch = v.check_positive_int("steps_per_epoch", steps_per_epoch)
        seed = v.check_seed("seed", seed)
        self.seed = (
            int(np.random.SeedSequence().entropy % 2**63) if seed is None else seed
        )
        self.epoch = 0

    def __len__(self):
        return self.steps_per_epoch

    def __getitem__(self, index):
        if not 0 <= index < self.steps_per_epoch:
            raise IndexError(f"batch {index} of {self.steps_per_epoch}")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        pairs = _draw(
            self.items,
            self.counts,
            self.batch_size,
            self.max_offset,
            self.window,
            self.num_negatives,
            self.min_negative_offset,
            rng,
        )
        return dict(zip(("anchor", "positive", "negative"), pairs))

    def on_epoch_end(self):
        self.epoch += 1
