"""`paraphrase_mining`: the most similar pairs within one set of sentences, found
block by block instead of from the full N x N similarity matrix (the procedure of
sentence-transformers' `util.paraphrase_mining`, Reimers and Gurevych, 2019,
"Sentence-BERT")."""

import numpy as np

from keras_contrastive._validation import (
    check_one_of,
    check_positive_int,
    check_strings,
    fail,
)
from keras_contrastive.evaluation.arrays import check_embeddings
from keras_contrastive.evaluation.semantic_index import SemanticIndex
from keras_contrastive.evaluation.texts import (
    encode_texts,
    is_text_encoder,
)


def _merge(keys, scores, max_pairs):
    """Unique pair keys with their best score, the top `max_pairs` by score."""
    # Sorted by key, then by descending score: the first row of each key is its
    # best score (the two directions of a pair may differ in the last bit).
    order = np.lexsort((-scores, keys))
    keys, scores = keys[order], scores[order]
    first = np.r_[True, keys[1:] != keys[:-1]]
    keys, scores = keys[first], scores[first]
    if len(keys) > max_pairs:
        # Descending score, then ascending key: deterministic among equal scores.
        order = np.lexsort((keys, -scores))[:max_pairs]
        keys, scores = keys[order], scores[order]
    return keys, scores


def paraphrase_mining(
    encoder_or_embeddings,
    sentences=None,
    top_k=100,
    max_pairs=500_000,
    metric="cosine",
    batch_size=32,
    query_chunk_size=5000,
    block_size=16384,
):
    """The highest-scoring pairs `(i, j, score)`, `i < j`, within one set.

    Each item is compared with every other through `SemanticIndex`'s blocked
    exact search (at most `query_chunk_size x block_size` scores exist at a
    time), keeps its `top_k` best partners (itself excluded), and the union of
    these pairs, each counted once, is sorted by score. The N x N matrix is never
    formed, so this scales to sets whose full matrix would not fit in memory.
    As in sentence-transformers' `util.paraphrase_mining` (Reimers and Gurevych,
    2019), a pair is found when at least one of its two items ranks the other in
    its `top_k`; with `top_k >= N - 1` every pair is scored.

    Args:
        encoder_or_embeddings: a text encoder (an object with `encode(texts,
            batch_size=..., verbose=...)`, a `keras.Model` taking strings, or a
            callable mapping a list of strings to `(batch, dim)`) used on
            `sentences`, or ready-made embeddings of shape `(N, dim)`.
        sentences: the N texts to embed; with embeddings it may be None (or a
            list of N texts, only checked for its length).
        top_k: partners kept per item; clamped to N - 1.
        max_pairs: at most this many pairs are returned (the best ones).
        metric: `"cosine"` or `"dot"` (the score of a pair).
        batch_size: texts per encoder call.
        query_chunk_size: items searched at once before their pairs are merged.
        block_size: items per block of the exact search.

    Returns:
        A list of `(i, j, score)` tuples (Python int, int, float) with `i < j`
        indexing `sentences` (or the embedding rows), sorted by descending
        score; equal scores in ascending `(i, j)` order.

    Example:

    >>> import numpy as np
    >>> embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    >>> [(i, j, round(s, 3)) for i, j, s in paraphrase_mining(embeddings, top_k=1)]
    [(0, 2, 0.994), (1, 3, 0.994)]
    """
    if is_text_encoder(encoder_or_embeddings):
        texts = check_strings("sentences", sentences)
        if len(texts) < 2:
            fail("sentences", "a list of at least 2 texts (a pair)", texts)
        embeddings = encode_texts(
            encoder_or_embeddings, texts, batch_size, name="sentences"
        )
    else:
        embeddings = check_embeddings("encoder_or_embeddings", encoder_or_embeddings)
        if sentences is not None:
            texts = check_strings("sentences", sentences)
            if len(texts) != len(embeddings):
                fail(
                    "sentences",
                    f"one text per embedding row ({len(embeddings)} texts)",
                    len(texts),
                    received_as="len(sentences)",
                )
    num = len(embeddings)
    if num < 2:
        fail(
            "encoder_or_embeddings.shape",
            "(num_items, dim) with num_items >= 2 (a pair)",
            embeddings.shape,
        )
    top_k = min(check_positive_int("top_k", top_k), num - 1)
    max_pairs = check_positive_int("max_pairs", max_pairs)
    metric = check_one_of("metric", metric, ("cosine", "dot"))
    batch_size = check_positive_int("batch_size", batch_size)
    query_chunk_size = check_positive_int("query_chunk_size", query_chunk_size)
    block_size = check_positive_int("block_size", block_size)

    index = SemanticIndex(
        metric=metric,
        block_size=block_size,
        query_batch_size=min(query_chunk_size, 256),
    )
    index.add(embeddings)
    stored = index.embeddings  # unit rows for cosine
    best_keys = np.zeros((0,), np.int64)
    best_scores = np.zeros((0,), np.float32)
    width = top_k + 1  # one more, as an item usually finds itself first
    for start in range(0, num, query_chunk_size):
        rows = np.arange(start, min(start + query_chunk_size, num))
        positions, scores = index.search_positions(stored[rows], width)
        # Drop the item itself; where it is not among the results (ties with
        # duplicates, or the dot metric), drop the last partner instead.
        is_self = positions == rows[:, None]
        is_self[~is_self.any(axis=1), -1] = True
        partners = positions[~is_self].reshape(len(rows), top_k)
        partner_scores = scores[~is_self].reshape(len(rows), top_k)
        first = np.minimum(rows[:, None], partners).ravel()
        second = np.maximum(rows[:, None], partners).ravel()
        best_keys, best_scores = _merge(
            np.concatenate([best_keys, first * num + second]),
            np.concatenate([best_scores, partner_scores.ravel()]),
            max_pairs,
        )
    order = np.lexsort((best_keys, -best_scores))
    return [
        (int(key // num), int(key % num), float(score))
        for key, score in zip(best_keys[order], best_scores[order])
    ]
