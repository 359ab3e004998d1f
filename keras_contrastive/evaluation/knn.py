"""Weighted cosine k-nearest-neighbour classification (Wu et al., 2018).

The standard quick read-out of a self-supervised representation: no training, only
the frozen embeddings of a labelled "memory" set. Each query's `k` most cosine-similar
training rows vote for their class with weight `exp(cos / temperature)`; the class
with the largest summed vote is the prediction.

The neighbours come from the library's one search, `SemanticIndex` (exact, cosine):
queries go in batches against chunks of training rows, so peak memory is
`batch_size x train_batch_size` similarities plus `batch_size x num_classes` votes,
whatever the sizes of the two sets (50,000 x 10,000: about 50 MB at a time).
"""

import numpy as np

from keras_contrastive._validation import (
    check_int_tuple,
    check_positive_int,
    check_positive_number,
    is_int,
)
from keras_contrastive.evaluation.arrays import (
    check_embeddings,
    check_labels,
    check_same_dim,
    resolve_num_classes,
)
from keras_contrastive.evaluation.semantic_index import SemanticIndex


def _vote(sims, labels, temperature, num_classes):
    """Per-class sums `(queries, num_classes)` of the weights exp(s / t), float64,
    each query's scaled by exp(-max s / t)."""
    # Dividing every weight of a query by exp(max s / t) keeps the arg-max and
    # avoids overflow for small temperatures.
    weights = np.exp((sims - sims.max(axis=1, keepdims=True)) / temperature)
    votes = np.zeros((len(sims), num_classes))
    rows = np.broadcast_to(np.arange(len(sims))[:, None], labels.shape)
    np.add.at(votes, (rows, labels), weights)
    return votes


def knn_classify(
    train_embeddings,
    train_labels,
    query_embeddings,
    k=200,
    temperature=0.1,
    num_classes=None,
    batch_size=256,
    train_batch_size=65536,
):
    """Predicts labels by the weighted cosine kNN vote of Wu et al. (2018).

    Both sets are L2-normalised; for each query the `k` training rows with the
    highest cosine similarity `s_i` vote for their label with weight
    `exp(s_i / temperature)`, and the class with the largest total wins:

    ```
    prediction(q) = argmax_c  sum_{i in topk(q)} [y_i = c] * exp(s_i / t)
    ```

    Equal totals go to the lowest label. The votes of one query are all
    scaled by `exp(-max_i s_i / t)` before summing, which leaves the arg-max
    unchanged and keeps small temperatures from overflowing float32.

    Labels may be any non-negative integers (ids such as 10**9 included): they
    are mapped to contiguous classes (`numpy.unique`) for the vote, whose memory
    is `batch_size x number of distinct labels`, and the predictions are the
    original label values.

    Args:
        train_embeddings: array of shape `(num_train, dim)`, the labelled memory.
            NumPy array, list or backend tensor.
        train_labels: integer class labels of shape `(num_train,)` or
            `(num_train, 1)`, values >= 0 (whole-number floats are accepted).
        query_embeddings: array of shape `(num_query, dim)` to classify.
        k: number of neighbours (>= 1). A `k` larger than `num_train` is clamped
            to `num_train` (every training row votes), so a monitor configured
            with the paper's `k=200` also works on a small memory set.
        temperature: `t > 0` in the vote weight `exp(s / t)`; small values
            approach a plain majority of the nearest rows ordered by similarity,
            large values approach an unweighted majority vote.
        num_classes: optional: when given, every label must be below it (a
            `ValueError` otherwise). The vote itself runs over the distinct
            labels, whatever `num_classes` is.
        batch_size: queries processed at once.
        train_batch_size: training rows compared at once; with more rows than
            this, the top-k is merged chunk by chunk.

    Returns:
        NumPy int64 array of shape `(num_query,)` with the predicted labels
        (values of `train_labels`).

    Example:

    >>> import numpy as np
    >>> train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> labels = np.array([0, 0, 1, 1])
    >>> knn_classify(train, labels, np.array([[1.0, 0.2], [0.2, 1.0]]), k=2)
    array([0, 1])
    """
    classes, votes = _knn_votes(
        train_embeddings,
        train_labels,
        query_embeddings,
        k,
        temperature,
        num_classes,
        batch_size,
        train_batch_size,
    )
    predictions = [np.argmax(batch, axis=1) for batch in votes]
    if not predictions:
        return np.zeros((0,), dtype=np.int64)
    return classes[np.concatenate(predictions)].astype(np.int64)


def _knn_votes(
    train_embeddings,
    train_labels,
    query_embeddings,
    k,
    temperature,
    num_classes,
    batch_size,
    train_batch_size,
):
    """Checks the arguments; `(classes, votes)`: the distinct training labels and
    a generator of each query batch's `(batch, len(classes))` vote totals."""
    train = check_embeddings("train_embeddings", train_embeddings, allow_empty=False)
    query = check_embeddings("query_embeddings", query_embeddings)
    check_same_dim("query_embeddings", query, "train_embeddings", train)
    labels = check_labels(
        "train_labels", train_labels, train.shape[0], "train_embeddings"
    )
    k = min(check_positive_int("k", k), train.shape[0])
    temperature = check_positive_number("temperature", temperature)
    if num_classes is not None:
        resolve_num_classes(num_classes, labels)
    # Contiguous classes 0..C-1 for the vote (C = distinct labels): a label of
    # 10**9 must not size a 10**9-column vote matrix.
    classes, class_of_row = np.unique(labels, return_inverse=True)
    class_of_row = class_of_row.reshape(-1)
    batch_size = check_positive_int("batch_size", batch_size)
    train_batch_size = check_positive_int("train_batch_size", train_batch_size)

    def votes():
        if query.shape[0] == 0:
            return
        index = SemanticIndex(
            metric="cosine", block_size=train_batch_size, query_batch_size=batch_size
        )
        index.add(train)
        positions, sims = index.search(query, k)
        for start in range(0, len(query), batch_size):
            yield _vote(
                sims[start : start + batch_size].astype(np.float64),
                class_of_row[positions[start : start + batch_size]],
                temperature,
                len(classes),
            )

    return classes, votes()


def knn_accuracy(
    train_embeddings,
    train_labels,
    query_embeddings,
    query_labels,
    k=200,
    temperature=0.1,
    top_k=1,
    **kwargs,
):
    """Top-1 (or top-k) accuracy of the weighted kNN vote on labelled queries.

    Top-1: the fraction of queries whose `knn_classify` prediction equals
    `query_labels`. Top-k (the second number of Wu et al. 2018's tables, and of
    solo-learn's `WeightedKNNClassifier`): the fraction whose true label is among
    the `k` classes with the largest vote totals. Classes are ranked by total,
    equal totals by label (the lower first, the tie rule of `knn_classify`), and
    classes without a vote come after every voted class; a query label absent
    from `train_labels` is never right.

    Args:
        train_embeddings, train_labels, query_embeddings, k, temperature: as in
            `knn_classify`.
        query_labels: true labels of the queries, shape `(num_query,)` or
            `(num_query, 1)`.
        top_k: an int (the accuracy comes back as a float) or a tuple of ints
            (a dict `{k: accuracy}` comes back, e.g. `top_k=(1, 5)`).
        **kwargs: further arguments of `knn_classify` (`num_classes`,
            `batch_size`, `train_batch_size`).

    Returns:
        The accuracy as a Python float, or a dict of them keyed by `top_k`.

    Example:

    >>> import numpy as np
    >>> train = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> knn_accuracy(train, [0, 1], train, [0, 1], k=1)
    1.0
    >>> knn_accuracy(train, [0, 1], train, [1, 0], k=1, top_k=(1, 2))
    {1: 0.0, 2: 1.0}
    """
    single = is_int(top_k)
    top_k = check_int_tuple("top_k", top_k, minimum=1)
    query = check_embeddings("query_embeddings", query_embeddings, allow_empty=False)
    truth = check_labels(
        "query_labels", query_labels, query.shape[0], "query_embeddings"
    )
    unknown = set(kwargs) - {"num_classes", "batch_size", "train_batch_size"}
    if unknown:
        raise TypeError(
            f"knn_accuracy() got unexpected keyword arguments {sorted(unknown)}"
        )
    classes, votes = _knn_votes(
        train_embeddings,
        train_labels,
        query,
        k,
        temperature,
        kwargs.get("num_classes"),
        kwargs.get("batch_size", 256),
        kwargs.get("train_batch_size", 65536),
    )
    # Rank of each query's true class: classes with a larger total, plus those
    # with an equal total and a lower label. Absent labels get rank infinity.
    position = np.clip(np.searchsorted(classes, truth), 0, len(classes) - 1)
    known = classes[position] == truth
    ranks, start = [], 0
    for batch in votes:
        rows = np.arange(len(batch))
        column = position[start : start + len(batch)]
        own = batch[rows, column][:, None]
        lower = np.arange(batch.shape[1])[None, :] < column[:, None]
        ranks.append(np.sum((batch > own) | ((batch == own) & lower), axis=1))
        start += len(batch)
    rank = np.where(known, np.concatenate(ranks), np.iinfo(np.int64).max)
    accuracies = {j: float(np.mean(rank < j)) for j in top_k}
    return accuracies[top_k[0]] if single else accuracies
