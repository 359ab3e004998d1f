"""Independent NumPy (float64, loop-based) references for every loss of the library.

Written straight from the papers' definitions, deliberately naive: no shared
code with the library. Each `*_rows` function returns the per-anchor values the
functional form must return; each scalar function returns what the class (default
reduction "mean") must return.
"""

import numpy as np


def normalize(x):
    x = np.asarray(x, dtype=np.float64)
    norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
    return x / np.maximum(norm, 1e-6)


def cos(a, b):
    return float(np.dot(normalize(a), normalize(b)))


def logsumexp(values):
    values = np.asarray(values, dtype=np.float64)
    m = np.max(values)
    return float(m + np.log(np.sum(np.exp(values - m))))


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


# --------------------------------------------------------------------------------
# View-pair losses


def info_nce_rows(query, keys, negatives=(), temperature=0.1):
    query, keys = np.asarray(query, np.float64), np.asarray(keys, np.float64)
    n = len(query)
    out = np.zeros(n)
    for i in range(n):
        cands = [cos(query[i], keys[j]) / temperature for j in range(n)]
        for neg in negatives:
            neg = np.asarray(neg, np.float64)
            rows = neg if neg.ndim == 2 else neg[i]
            cands += [cos(query[i], r) / temperature for r in rows]
        out[i] = logsumexp(cands) - cos(query[i], keys[i]) / temperature
    return out


def nt_xent_rows(z_a, z_b, temperature=0.5):
    z = np.concatenate([z_a, z_b]).astype(np.float64)
    two_n = len(z)
    n = two_n // 2
    out = np.zeros(two_n)
    for i in range(two_n):
        p = (i + n) % two_n
        s = [cos(z[i], z[j]) / temperature for j in range(two_n) if j != i]
        out[i] = logsumexp(s) - cos(z[i], z[p]) / temperature
    return out


def symmetric_info_nce_rows(z_a, z_b, temperature=0.07):
    return 0.5 * (
        info_nce_rows(z_a, z_b, temperature=temperature)
        + info_nce_rows(z_b, z_a, temperature=temperature)
    )


def binary_nce_scalar(z_a, z_b, temperature=0.1, bias=0.0):
    n = len(z_a)
    s = np.array(
        [[cos(z_a[i], z_b[j]) / temperature + bias for j in range(n)] for i in range(n)]
    )
    pos = -np.mean([log_sigmoid(s[i, i]) for i in range(n)])
    neg = -np.mean(
        [log_sigmoid(-s[i, j]) for i in range(n) for j in range(n) if i != j]
    )
    return pos + neg


def binary_nce_rows(z_a, z_b, temperature=0.1, bias=0.0):
    n = len(z_a)
    out = np.zeros(n)
    for i in range(n):
        s = [cos(z_a[i], z_b[j]) / temperature + bias for j in range(n)]
        out[i] = -log_sigmoid(s[i]) - np.mean(
            [log_sigmoid(-s[j]) for j in range(n) if j != i]
        )
    return out


def debiased_nt_xent_rows(z_a, z_b, temperature=0.5, tau_plus=0.1):
    z = np.concatenate([z_a, z_b]).astype(np.float64)
    two_n = len(z)
    n = two_n // 2
    m = two_n - 2
    out = np.zeros(two_n)
    for i in range(two_n):
        p = (i + n) % two_n
        pos = np.exp(cos(z[i], z[p]) / temperature)
        neg = sum(
            np.exp(cos(z[i], z[k]) / temperature)
            for k in range(two_n)
            if k not in (i, p)
        )
        ng = max(
            (neg - m * tau_plus * pos) / (1 - tau_plus), m * np.exp(-1 / temperature)
        )
        out[i] = -np.log(pos / (pos + ng))
    return out


def byol_rows(z_a, z_b):
    return np.array([2 - 2 * cos(a, b) for a, b in zip(z_a, z_b)])


def siglip_matrix(x, y, logit_scale=10.0, logit_bias=-10.0):
    """The N x N terms -log sigmoid(z_ij (t cos(x_i, y_j) + b)) (Zhai et al. 2023)."""
    n = len(x)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            z = 1.0 if i == j else -1.0
            out[i, j] = -log_sigmoid(z * (logit_scale * cos(x[i], y[j]) + logit_bias))
    return out


def siglip_rows(x, y, logit_scale=10.0, logit_bias=-10.0):
    return siglip_matrix(x, y, logit_scale, logit_bias).sum(axis=1)


def siglip_scalar(x, y, logit_scale=10.0, logit_bias=-10.0):
    """The paper's Algorithm 1: -sum_ij log sigmoid(z_ij logits_ij) / N."""
    return siglip_matrix(x, y, logit_scale, logit_bias).sum() / len(x)


def barlow_twins_scalar(z_a, z_b, redundancy_weight=5e-3, scale_loss=1.0, eps=1e-5):
    """Zbontar et al. 2021, eq. 1 with the code's batch norm (biased var, eps)."""
    z_a, z_b = np.asarray(z_a, np.float64), np.asarray(z_b, np.float64)
    n, d = z_a.shape

    def standardize(column):
        mean = sum(column) / n
        var = sum((v - mean) ** 2 for v in column) / n
        return [(v - mean) / np.sqrt(var + eps) for v in column]

    a = [standardize(z_a[:, i]) for i in range(d)]  # a[i][row]
    b = [standardize(z_b[:, j]) for j in range(d)]
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(a[i][k] * b[j][k] for k in range(n)) / n
            loss += (1.0 - c) ** 2 if i == j else redundancy_weight * c**2
    return scale_loss * loss


# --------------------------------------------------------------------------------
# Label-based metric losses


def sq_dist(a, b):
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return float(np.dot(d, d))


def contrastive_scalar(labels, x, margin=1.0):
    n = len(x)
    terms = []
    for i in range(n):
        for j in range(i + 1, n):
            d2 = sq_dist(x[i], x[j])
            terms.append(d2 if labels[i] == labels[j] else max(0.0, margin - d2))
    return float(np.mean(terms)) if terms else 0.0


def contrastive_rows(labels, x, margin=1.0):
    n = len(x)
    out = np.zeros(n)
    for i in range(n):
        terms = []
        for j in range(n):
            if j == i:
                continue
            d2 = sq_dist(x[i], x[j])
            terms.append(d2 if labels[i] == labels[j] else max(0.0, margin - d2))
        out[i] = np.mean(terms) if terms else 0.0
    return out


def _triplets(labels):
    n = len(labels)
    for a in range(n):
        for p in range(n):
            if p == a or labels[p] != labels[a]:
                continue
            for k in range(n):
                if labels[k] != labels[a]:
                    yield a, p, k


def triplet_all_scalar(labels, x, margin=1.0):
    terms = [
        max(0.0, sq_dist(x[a], x[p]) - sq_dist(x[a], x[k]) + margin)
        for a, p, k in _triplets(labels)
    ]
    return float(np.mean(terms)) if terms else 0.0


def triplet_all_rows(labels, x, margin=1.0):
    out = np.zeros(len(x))
    for a in range(len(x)):
        terms = [
            max(0.0, sq_dist(x[a], x[p]) - sq_dist(x[a], x[k]) + margin)
            for aa, p, k in _triplets(labels)
            if aa == a
        ]
        out[a] = np.mean(terms) if terms else 0.0
    return out


def _hard_terms(labels, x, margin):
    n = len(x)
    terms = {}
    for a in range(n):
        pos = [
            sq_dist(x[a], x[p]) for p in range(n) if p != a and labels[p] == labels[a]
        ]
        neg = [sq_dist(x[a], x[k]) for k in range(n) if labels[k] != labels[a]]
        if pos and neg:
            terms[a] = max(0.0, max(pos) - min(neg) + margin)
    return terms


def triplet_hard_scalar(labels, x, margin=1.0):
    terms = _hard_terms(labels, x, margin)
    return float(np.mean(list(terms.values()))) if terms else 0.0


def triplet_hard_rows(labels, x, margin=1.0):
    terms = _hard_terms(labels, x, margin)
    return np.array([terms.get(a, 0.0) for a in range(len(x))])


def _semi_hard_terms(labels, x, margin):
    """{anchor: [loss per positive]} for anchors with at least one negative."""
    n = len(x)
    terms = {}
    for a in range(n):
        neg = [sq_dist(x[a], x[k]) for k in range(n) if labels[k] != labels[a]]
        if not neg:
            continue
        for p in range(n):
            if p == a or labels[p] != labels[a]:
                continue
            d_ap = sq_dist(x[a], x[p])
            semi = [d for d in neg if d_ap < d < d_ap + margin]
            chosen = min(semi) if semi else min(neg)
            terms.setdefault(a, []).append(max(0.0, d_ap - chosen + margin))
    return terms


def triplet_semi_hard_scalar(labels, x, margin=1.0):
    terms = [t for ts in _semi_hard_terms(labels, x, margin).values() for t in ts]
    return float(np.mean(terms)) if terms else 0.0


def triplet_semi_hard_rows(labels, x, margin=1.0):
    terms = _semi_hard_terms(labels, x, margin)
    return np.array([np.mean(terms[a]) if a in terms else 0.0 for a in range(len(x))])


def triplet_margin_rows(anchor, positive, negative, margin=1.0):
    return np.array(
        [
            max(0.0, sq_dist(a, p) - sq_dist(a, k) + margin)
            for a, p, k in zip(anchor, positive, negative)
        ]
    )


def _lifted_j(labels, x, margin, i, j):
    n = len(x)
    dist = lambda u, v: np.sqrt(sq_dist(x[u], x[v]))  # noqa: E731
    s = sum(np.exp(margin - dist(i, k)) for k in range(n) if labels[k] != labels[i])
    s += sum(np.exp(margin - dist(j, k)) for k in range(n) if labels[k] != labels[j])
    if s == 0:
        return -np.inf
    return dist(i, j) + np.log(s)


def lifted_scalar(labels, x, margin=1.0):
    n = len(x)
    pairs = [
        (i, j) for i in range(n) for j in range(i + 1, n) if labels[i] == labels[j]
    ]
    if not pairs:
        return 0.0
    total = sum(max(0.0, _lifted_j(labels, x, margin, i, j)) ** 2 for i, j in pairs)
    return total / (2 * len(pairs))


def lifted_rows(labels, x, margin=1.0):
    n = len(x)
    out = np.zeros(n)
    for i in range(n):
        js = [j for j in range(n) if j != i and labels[j] == labels[i]]
        if js:
            out[i] = np.mean(
                [max(0.0, _lifted_j(labels, x, margin, i, j)) ** 2 / 2 for j in js]
            )
    return out


def _supcon_terms(labels, x, temperature):
    n = len(x)
    terms = {}
    for i in range(n):
        pos = [p for p in range(n) if p != i and labels[p] == labels[i]]
        if not pos:
            continue
        lse = logsumexp([cos(x[i], x[k]) / temperature for k in range(n) if k != i])
        terms[i] = -np.mean([cos(x[i], x[p]) / temperature - lse for p in pos])
    return terms


def supcon_scalar(labels, x, temperature=0.1):
    terms = _supcon_terms(labels, x, temperature)
    return float(np.mean(list(terms.values()))) if terms else 0.0


def supcon_rows(labels, x, temperature=0.1):
    terms = _supcon_terms(labels, x, temperature)
    return np.array([terms.get(i, 0.0) for i in range(len(x))])
