"""Time-contrastive pair sampling, checked exhaustively on small sequences.

Every step of the test sequences holds its own (sequence, time) coordinates, so a
sampled item tells where it came from: each positive is checked to lie within
`max_offset` of its anchor, each negative to come from another sequence or from
at least `min_negative_offset` away, and over many draws every legal pair (and
only legal pairs) to appear.
"""

import doctest
import itertools

import numpy as np
import pytest

from keras_contrastive.datasets import TemporalPairs, temporal, temporal_pairs


def coordinate_sequences(lengths):
    """Sequence i, step t holds [i, t] (int64)."""
    return [
        np.stack([np.full(n, i), np.arange(n)], axis=-1) for i, n in enumerate(lengths)
    ]


def where(items, window):
    """(sequence, start) of sampled steps or windows; windows are checked to be
    consecutive steps of one sequence."""
    if window is None:
        return items[..., 0], items[..., 1]
    sequence, time = items[..., 0], items[..., 1]
    assert np.all(sequence == sequence[..., :1])
    assert np.all(np.diff(time, axis=-1) == 1)
    assert time.shape[-1] == window
    return sequence[..., 0], time[..., 0]


def legal_positives(lengths, window, max_offset):
    size = 1 if window is None else window
    pairs = set()
    for i, n in enumerate(lengths):
        starts = range(n - size + 1)
        for t, s in itertools.product(starts, starts):
            if 1 <= abs(s - t) <= max_offset:
                pairs.add((i, t, s))
    return pairs


LENGTHS = (5, 9, 3)
CASES = [
    (None, 1, None),
    (None, 2, 4),
    (2, 1, 3),
    (2, 3, None),
    (1, 4, 5),
]


@pytest.mark.parametrize("window,max_offset,min_negative_offset", CASES)
def test_every_pair_is_legal_and_every_legal_pair_is_drawn(
    window, max_offset, min_negative_offset
):
    sequences = coordinate_sequences(LENGTHS)
    anchors, positives, negatives = temporal_pairs(
        sequences,
        num_pairs=4000,
        max_offset=max_offset,
        window=window,
        num_negatives=3,
        min_negative_offset=min_negative_offset,
        seed=0,
    )
    a_seq, a_start = where(anchors, window)
    p_seq, p_start = where(positives, window)
    n_seq, n_start = where(negatives, window)
    assert np.all(p_seq == a_seq)
    drawn = set(zip(a_seq.tolist(), a_start.tolist(), p_start.tolist()))
    assert drawn == legal_positives(LENGTHS, window, max_offset)

    size = 1 if window is None else window
    same = n_seq == a_seq[:, None]
    distance = np.abs(n_start - a_start[:, None])
    if min_negative_offset is None:
        assert not same.any()
    else:
        assert np.all(distance[same] >= min_negative_offset)
    # Every legal negative of every anchor position is drawn.
    legal = set()
    for i, n in enumerate(LENGTHS):
        for t in range(n - size + 1):
            for j, m in enumerate(LENGTHS):
                for s in range(m - size + 1):
                    far = min_negative_offset is not None and abs(s - t) >= (
                        min_negative_offset
                    )
                    if j != i or far:
                        legal.add((i, t, j, s))
    got = {
        (i, t, j, s)
        for i, t, js, ss in zip(a_seq, a_start, n_seq, n_start)
        for j, s in zip(js, ss)
    }
    assert got == legal


def test_anchors_are_uniform_over_positions():
    sequences = coordinate_sequences((4, 12))
    anchors, _ = temporal_pairs(sequences, num_pairs=16000, max_offset=1, seed=1)
    counts = np.bincount(anchors[:, 0] * 12 + anchors[:, 1], minlength=24)
    observed = counts[np.r_[0:4, 12:24]]
    # 16 positions, 1000 expected each: 5 binomial standard deviations.
    assert np.all(np.abs(observed - 1000) < 5 * np.sqrt(1000))


def test_equal_length_array_input_and_trailing_shape():
    series = np.random.default_rng(0).normal(size=(4, 20, 3)).astype("float32")
    anchors, positives = temporal_pairs(series, 10, 2, window=5, seed=0)
    assert anchors.shape == positives.shape == (10, 5, 3)
    assert anchors.dtype == np.float32
    # Each window is a real window of the series.
    flat = {series[i, t : t + 5].tobytes() for i in range(4) for t in range(16)}
    assert all(window.tobytes() in flat for window in anchors)


def test_seeded_determinism():
    sequences = coordinate_sequences(LENGTHS)
    kwargs = dict(num_pairs=50, max_offset=2, num_negatives=2)
    first = temporal_pairs(sequences, seed=3, **kwargs)
    again = temporal_pairs(sequences, seed=3, **kwargs)
    other = temporal_pairs(sequences, seed=4, **kwargs)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))


def test_a_single_sequence_takes_negatives_from_far_away():
    sequences = coordinate_sequences((10,))
    anchors, _, negatives = temporal_pairs(
        sequences, 500, 1, num_negatives=2, min_negative_offset=5, seed=0
    )
    assert np.all(np.abs(negatives[..., 1] - anchors[:, None, 1]) >= 5)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (
            dict(window=5),
            ValueError,
            r"`sequences\[0\]` must be a sequence of at least 6",
        ),
        (dict(window=3), ValueError, r"Received: len\(sequences\[2\]\)=3"),
        (dict(max_offset=0), ValueError, "`max_offset` must be an int >= 1"),
        (dict(max_offset=1.5), TypeError, "`max_offset`"),
        (dict(window=0), ValueError, "`window`"),
        (dict(num_pairs=0), ValueError, "`num_pairs`"),
        (dict(num_negatives=-1), ValueError, "`num_negatives`"),
        (
            dict(max_offset=2, min_negative_offset=2),
            ValueError,
            "`min_negative_offset` must be an int >= 3",
        ),
        (dict(seed="x"), TypeError, "`seed`"),
    ],
)
def test_bad_arguments_get_clear_errors(kwargs, error, match):
    arguments = dict(num_pairs=4, max_offset=1) | kwargs
    with pytest.raises(error, match=match):
        temporal_pairs(coordinate_sequences(LENGTHS), **arguments)


def test_bad_sequences_get_clear_errors():
    with pytest.raises(ValueError, match="`sequences` must be an array of shape"):
        temporal_pairs(np.zeros(5), 2, 1)
    with pytest.raises(TypeError, match="`sequences` must be a NumPy array or a list"):
        temporal_pairs("abc", 2, 1)
    with pytest.raises(ValueError, match="`sequences` must be a non-empty"):
        temporal_pairs([], 2, 1)
    with pytest.raises(ValueError, match=r"`sequences\[1\]` must be an array of shape"):
        temporal_pairs([np.zeros((4, 2)), np.zeros((4, 3))], 2, 1)
    with pytest.raises(TypeError, match=r"`sequences\[0\]` must be numeric"):
        temporal_pairs([np.array(["a", "b", "c"])], 2, 1)
    with pytest.raises(ValueError, match="at least 2 sequences for negatives"):
        temporal_pairs([np.zeros((8, 2))], 2, 1, num_negatives=1)
    with pytest.raises(ValueError, match="`min_negative_offset` must be at most 4"):
        temporal_pairs([np.zeros((8, 2))], 2, 1, num_negatives=1, min_negative_offset=5)


def test_temporal_pairs_dataset():
    sequences = coordinate_sequences(LENGTHS)
    data = TemporalPairs(
        sequences, batch_size=6, max_offset=2, window=2, num_negatives=2, seed=5
    )
    # 4 + 8 + 2 window positions, 6 per batch.
    assert len(data) == 3
    batch = data[1]
    assert set(batch) == {"anchor", "positive", "negative"}
    assert batch["anchor"].shape == (6, 2, 2)
    assert batch["negative"].shape == (6, 2, 2, 2)
    a_seq, a_start = where(batch["anchor"], 2)
    p_seq, p_start = where(batch["positive"], 2)
    assert np.all(a_seq == p_seq)
    assert np.all(np.abs(a_start - p_start) <= 2)
    # A batch depends on (seed, epoch, index) only, not on the order of requests.
    again = TemporalPairs(
        sequences, batch_size=6, max_offset=2, window=2, num_negatives=2, seed=5
    )
    again[2]
    for key in batch:
        np.testing.assert_array_equal(again[1][key], batch[key])
    data.on_epoch_end()
    assert not np.array_equal(data[1]["anchor"], batch["anchor"])
    with pytest.raises(IndexError):
        data[3]
    plain = TemporalPairs(sequences, batch_size=4, steps_per_epoch=7, seed=0)
    assert len(plain) == 7 and set(plain[0]) == {"anchor", "positive"}
    with pytest.raises(ValueError, match="`batch_size`"):
        TemporalPairs(sequences, batch_size=0)


def test_docstring_examples():
    result = doctest.testmod(temporal, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
