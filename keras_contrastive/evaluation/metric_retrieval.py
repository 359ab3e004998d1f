"""`metric_retrieval`: precision@1, R-precision and MAP@R of labelled embeddings,
the read-out of supervised metric learning proposed by Musgrave, Belongie and Lim
(2020), "A Metric Learning Reality Check".

Each query ranks the reference items by cosine similarity; an item is relevant
when it has the query's class. With `R` the number of references of the query's
class, precision@1 asks whether the nearest item is relevant, R-precision is the
fraction of relevant items among the `R` nearest, and MAP@R averages the
precision at each relevant position among the `R` nearest (dividing by `R`, so
it rewards relevant items ranked early, unlike R-precision).

Queries go in blocks of `batch_size` against all references, so peak memory is
`batch_size x num_references` similarities (and their ranking), whatever the
number of queries.
"""

import numpy as np

from keras_contrastive._validation import (
    check_one_of,
    check_positive_int,
    fail,
    shown_as,
    summarize,
)
from keras_contrastive.evaluation.arrays import (
    check_embeddings,
    check_labels,
    check_same_dim,
)
from keras_contrastive.evaluation.semantic_index import l2_normalize_rows

METRICS = ("precision_at_1", "r_precision", "map_at_r")


def _check_metrics(metrics):
    expectation = f"a name or a non-empty list/tuple of names among {METRICS}"
    names = (metrics,) if isinstance(metrics, str) else metrics
    if not isinstance(names, (list, tuple)) or not names:
        fail("metrics", expectation, summarize(metrics), TypeError)
    for name in names:
        if not isinstance(name, str):
            fail("metrics", expectation, summarize(metrics), TypeError)
        check_one_of("metrics", name, METRICS)
    # Each metric once, in the order asked.
    return tuple(dict.fromkeys(names))


def _ranked(sims, k):
    """Column indices of the `k` largest entries of each row of `sims`, best first.

    Equal similarities are ranked by column (the lower first), so the result does
    not depend on the partition's choice among ties.
    """
    num_rows, num_columns = sims.shape
    if k >= num_columns:
        return np.argsort(-sims, axis=1, kind="stable")
    # The k best of each row in column order, then a stable sort by similarity.
    top = np.sort(np.argpartition(-sims, k - 1, axis=1)[:, :k], axis=1)
    values = np.take_along_axis(sims, top, axis=1)
    kth = values.min(axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    ranked = np.take_along_axis(top, order, axis=1)
    # Rows with more than k entries at least as large as their k-th: a tie at the
    # boundary, where the partition may have kept a higher column. Those rows are
    # ranked in full (rare with real embeddings).
    tied = np.flatnonzero(np.sum(sims >= kth[:, None], axis=1) > k)
    if len(tied):
        ranked[tied] = np.argsort(-sims[tied], axis=1, kind="stable")[:, :k]
    return ranked


def metric_retrieval(
    embeddings,
    labels,
    query_embeddings=None,
    query_labels=None,
    metrics=METRICS,
    batch_size=256,
):
    """Precision@1, R-precision and MAP@R of Musgrave et al. (2020).

    The retrieval read-out of supervised metric learning (Musgrave, Belongie and
    Lim, 2020, "A Metric Learning Reality Check"). Each query ranks the
    reference items by cosine similarity, best first; item `i` of the ranking is
    relevant (`rel(i) = 1`) when it has the query's class. With `R` the number
    of references of the query's class and `P(i)` the fraction of relevant items
    among the first `i`:

    ```
    precision_at_1 = rel(1)
    r_precision    = (1 / R) * sum_{i <= R} rel(i)
    map_at_r       = (1 / R) * sum_{i <= R} P(i) * rel(i)
    ```

    Each metric is the mean over the queries. Without `query_embeddings`, every
    item of `embeddings` queries all the others (itself excluded, so `R` is its
    class size minus one); with them, each query searches all of `embeddings`
    (the two sets are taken to be disjoint: nothing is excluded).

    Queries whose class has no other item among the references (`R = 0`: a
    class of one item, or a query class absent from `labels`) have no relevant
    item to find and are left out of every metric. A `ValueError` is raised
    when no query is left.

    Equal similarities are ranked by the reference's row (the lower first), so
    ties give the same result on every run. Embeddings are L2-normalised (a row
    of zeros has cosine 0 to everything).

    Args:
        embeddings: `(num_references, dim)` array or backend tensor, the items
            searched.
        labels: integer class labels of the references, shape
            `(num_references,)` or `(num_references, 1)`, values >= 0
            (whole-number floats are accepted).
        query_embeddings: optional `(num_queries, dim)` array of separate
            queries, given together with `query_labels`. `None` (default):
            leave-one-out over `embeddings`.
        query_labels: the queries' class labels, shape `(num_queries,)` or
            `(num_queries, 1)`.
        metrics: a name or a list/tuple of names among `"precision_at_1"`,
            `"r_precision"` and `"map_at_r"`.
        batch_size: queries ranked at once; peak memory is about
            `batch_size x num_references` similarities and indices.

    Returns:
        A dict `{metric name: Python float in [0, 1]}` in the order of
        `metrics`.

    Example:

    >>> import numpy as np
    >>> embeddings = np.array([[1.0, 0.0], [1.0, 0.2], [0.5, 1.0], [0.3, 1.0]])
    >>> labels = np.array([0, 0, 1, 0])
    >>> metric_retrieval(embeddings, labels)  # doctest: +NORMALIZE_WHITESPACE
    {'precision_at_1': 0.6666666666666666, 'r_precision': 0.5,
     'map_at_r': 0.4166666666666667}
    >>> queries = np.array([[0.2, 1.0]])
    >>> metric_retrieval(embeddings, labels, queries, [1], metrics="precision_at_1")
    {'precision_at_1': 0.0}
    """
    names = _check_metrics(metrics)
    references = check_embeddings("embeddings", embeddings, allow_empty=False)
    reference_labels = check_labels("labels", labels, len(references), "embeddings")
    if (query_embeddings is None) != (query_labels is None):
        given, missing = (
            ("query_embeddings", "query_labels")
            if query_labels is None
            else ("query_labels", "query_embeddings")
        )
        fail(
            missing,
            f"given together with `{given}` (both or neither)",
            None,
        )
    leave_one_out = query_embeddings is None
    if leave_one_out:
        queries, truth = references, reference_labels
    else:
        queries = check_embeddings(
            "query_embeddings", query_embeddings, allow_empty=False
        )
        check_same_dim("query_embeddings", queries, "embeddings", references)
        truth = check_labels(
            "query_labels", query_labels, len(queries), "query_embeddings"
        )
    batch_size = check_positive_int("batch_size", batch_size)

    # R of every query: the references of its class, less itself when it is one.
    classes, counts = np.unique(reference_labels, return_counts=True)
    position = np.clip(np.searchsorted(classes, truth), 0, len(classes) - 1)
    relevant = np.where(classes[position] == truth, counts[position], 0)
    if leave_one_out:
        relevant = relevant - 1
    kept = np.flatnonzero(relevant > 0)
    if len(kept) == 0:
        fail(
            "labels" if leave_one_out else "query_labels",
            "labels with at least one query whose class has another item among "
            "the references",
            shown_as("labels where no query's class has another reference item"),
        )

    references = l2_normalize_rows(references)
    queries = l2_normalize_rows(queries)
    totals = dict.fromkeys(names, 0.0)
    for start in range(0, len(kept), batch_size):
        rows = kept[start : start + batch_size]
        r = relevant[rows]
        sims = queries[rows] @ references.T
        if leave_one_out:
            sims[np.arange(len(rows)), rows] = -np.inf
        ranked = _ranked(sims, int(r.max()))
        hits = reference_labels[ranked] == truth[rows][:, None]
        hits &= np.arange(ranked.shape[1])[None, :] < r[:, None]
        if "precision_at_1" in totals:
            totals["precision_at_1"] += float(np.sum(hits[:, 0]))
        if "r_precision" in totals:
            totals["r_precision"] += float(np.sum(np.sum(hits, axis=1) / r))
        if "map_at_r" in totals:
            precision = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
            totals["map_at_r"] += float(np.sum(np.sum(precision * hits, axis=1) / r))
    return {name: total / len(kept) for name, total in totals.items()}
