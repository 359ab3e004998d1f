"""Independent NumPy (float64, brute-force) reference of the weighted cosine kNN."""

import numpy as np


def reference_knn(train, labels, query, k, temperature, num_classes):
    """Predicted labels and, per query, the two safety margins of the answer.

    Returns `(predictions, neighbour_gap, vote_gap)`: the similarity gap between the
    k-th and (k+1)-th neighbour (inf when every row votes) and the log-vote gap
    between the two best classes; tests require both to be clear of float32 noise
    so that the comparison is about the algorithm, not about rounding.
    """
    train = np.asarray(train, np.float64)
    query = np.asarray(query, np.float64)
    labels = np.asarray(labels).reshape(-1)
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    query = query / np.linalg.norm(query, axis=1, keepdims=True)
    k = min(k, len(train))
    predictions, neighbour_gaps, vote_gaps = [], [], []
    for row in query @ train.T:
        order = np.argsort(-row, kind="stable")
        chosen = order[:k]
        neighbour_gaps.append(
            row[order[k - 1]] - row[order[k]] if k < len(row) else np.inf
        )
        # Log-domain sums: exp(s / t) overflows float64 for small t.
        log_votes = np.full(num_classes, -np.inf)
        for i in chosen:
            log_votes[labels[i]] = np.logaddexp(
                log_votes[labels[i]], row[i] / temperature
            )
        best = np.sort(log_votes)[::-1]
        predictions.append(int(np.argmax(log_votes)))
        vote_gaps.append(best[0] - best[1] if num_classes > 1 else np.inf)
    return np.array(predictions), np.array(neighbour_gaps), np.array(vote_gaps)
