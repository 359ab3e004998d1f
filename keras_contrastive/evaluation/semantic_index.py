"""`SemanticIndex`: the library's one nearest-neighbour search over embeddings.

Exact search is a blocked matrix product: queries go in batches of
`query_batch_size` against blocks of `block_size` indexed rows, each block keeps
its top k (similarity matmul and `top_k` on the Keras backend), and the per-block
results are merged in NumPy. Peak memory is one `query_batch_size x block_size`
score matrix, whatever the sizes of the two sets.

Approximate search (`backend="hnsw"`) uses the hierarchical navigable small world
graphs of Malkov and Yashunin (2018, "Efficient and robust approximate nearest
neighbor search using Hierarchical Navigable Small World graphs") as implemented by
Faiss (Johnson, Douze and Jegou, 2019, "Billion-scale similarity search with
GPUs"; `pip install "keras_contrastive[ann]"`, which installs `faiss-cpu`).

kNN classification (`knn_classify`), `paraphrase_mining` and `retrieval_metrics`
all search through this class.
"""

import numpy as np
from keras import ops

from keras_contrastive._validation import (
    check_one_of,
    check_positive_int,
    check_strings,
    fail,
    is_int,
    shown_as,
    summarize,
)
from keras_contrastive.evaluation.arrays import check_embeddings, to_numpy
from keras_contrastive.evaluation.texts import (
    check_text_encoder,
    encode_texts,
)

METRICS = ("cosine", "dot", "euclidean")
BACKENDS = ("exact", "hnsw")


def l2_normalize_rows(x):
    """Rows scaled to unit L2 norm; zero rows stay zero (cosine 0 to everything)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def import_faiss():
    """The `faiss` module, or an ImportError that says how to install it."""
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            '`SemanticIndex(backend="hnsw")` needs the Faiss library, which is not '
            'installed. Install it with `pip install "keras_contrastive[ann]"` (or '
            '`pip install faiss-cpu`), or use `backend="exact"`.'
        ) from error
    return faiss


class SemanticIndex:
    """Nearest-neighbour search over embeddings or texts, exact or approximate.

    Items are added as embeddings (`(N, dim)` arrays or tensors) or as texts
    (a list of str, embedded with `encoder`); `search` returns, for each query,
    the ids and scores of its `k` best items, best first. The score is the cosine
    similarity (`metric="cosine"`, the default: rows are L2-normalised when
    added and searched), the dot product (`"dot"`) or the negative Euclidean
    distance (`"euclidean"`), so a higher score is always nearer.

    `backend="exact"` (default) compares every query with every item by blocked
    matrix products on the Keras backend: at most `query_batch_size x
    block_size` scores exist at a time. Among equal scores the earlier-added item
    comes first on TensorFlow and JAX (PyTorch's `topk` does not promise an
    order for ties).

    `backend="hnsw"` searches a hierarchical navigable small world graph (Malkov
    and Yashunin, 2018) built by Faiss (Johnson et al., 2019) as items are added:
    sub-linear query time at the price of occasionally missing a true neighbour
    (measure it: `benchmarks/search.py` prints recall@10 against exact search).
    It needs the optional extra: `pip install "keras_contrastive[ann]"`.
    `hnsw_m` is the graph's connectivity, `ef_construction` and `ef_search` the
    candidate-list sizes while building and searching (larger: better recall,
    slower). The result format is the same as the exact one's.

    Args:
        encoder: optional text encoder, used when texts are added or searched:
            an object with `encode(texts, batch_size=..., verbose=...)`
            returning `(len(texts), dim)`, a `keras.Model` taking strings, or a
            callable mapping a list of strings to `(batch, dim)`.
        metric: `"cosine"`, `"dot"` or `"euclidean"`.
        backend: `"exact"` or `"hnsw"`.
        block_size: indexed rows per block of the exact search.
        query_batch_size: queries per batch of the exact search.
        batch_size: texts per encoder call.
        hnsw_m: HNSW connectivity (neighbours per node).
        ef_construction: HNSW candidate list size while adding.
        ef_search: HNSW candidate list size while searching (raised to `k`
            when smaller).

    Example:

    >>> import numpy as np
    >>> index = SemanticIndex()
    >>> index = index.add(np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]), ids=[7, 8, 9])
    >>> ids, scores = index.search(np.array([[1.0, 0.1]]), k=2)
    >>> ids
    array([[7, 9]])
    >>> np.round(scores, 3)
    array([[0.995, 0.677]], dtype=float32)
    >>> len(index)
    3
    """

    def __init__(
        self,
        encoder=None,
        metric="cosine",
        backend="exact",
        block_size=16384,
        query_batch_size=256,
        batch_size=32,
        hnsw_m=32,
        ef_construction=128,
        ef_search=64,
    ):
        check_text_encoder("encoder", encoder, optional=True)
        self.encoder = encoder
        self.metric = check_one_of("metric", metric, METRICS)
        self.backend = check_one_of("backend", backend, BACKENDS)
        self.block_size = check_positive_int("block_size", block_size)
        self.query_batch_size = check_positive_int("query_batch_size", query_batch_size)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.hnsw_m = check_positive_int("hnsw_m", hnsw_m)
        self.ef_construction = check_positive_int("ef_construction", ef_construction)
        self.ef_search = check_positive_int("ef_search", ef_search)
        self._faiss = import_faiss() if backend == "hnsw" else None
        self.reset()

    def reset(self):
        """Removes every item (the settings and the encoder stay)."""
        self._parts, self._id_parts = [], []
        self._size, self._dim = 0, None
        self._id_kind, self._explicit_ids = None, False
        self._matrix_cache, self._ids_cache, self._blocks_cache = None, None, None
        self._graph = None

    def __len__(self):
        return self._size

    @property
    def dim(self):
        """The embedding dimension (None while the index is empty)."""
        return self._dim

    @property
    def ids(self):
        """The ids of the items, in the order they were added."""
        if self._ids_cache is None:
            self._ids_cache = (
                np.concatenate(self._id_parts)
                if self._id_parts
                else np.zeros((0,), np.int64)
            )
        return self._ids_cache

    @property
    def embeddings(self):
        """The stored `(len(index), dim)` float32 rows (unit rows for cosine)."""
        if self._matrix_cache is None:
            if not self._parts:
                return np.zeros((0, self._dim or 0), np.float32)
            self._matrix_cache = np.concatenate(self._parts)
            self._parts = [self._matrix_cache]
        return self._matrix_cache

    def __repr__(self):
        return (
            f"SemanticIndex(metric={self.metric!r}, backend={self.backend!r}, "
            f"size={self._size}, dim={self._dim})"
        )

    # ------------------------------------------------------------------ adding

    def _vectors(self, name, value):
        """Embeddings of texts or an array, checked and prepared for the metric."""
        if isinstance(value, (list, tuple)):
            texts = not value or any(
                isinstance(item, (str, bytes, np.str_, np.bytes_)) for item in value
            )
        else:
            # One string, a NumPy array of strings or a TensorFlow string tensor.
            dtype = getattr(value, "dtype", None)
            texts = isinstance(value, (str, bytes)) or (
                getattr(dtype, "kind", None) in ("U", "S", "O")
                or getattr(dtype, "name", None) == "string"
            )
        if texts:
            value = check_strings(name, value)
            if self.encoder is None:
                fail(
                    "encoder",
                    "a text encoder to add or search texts (pass "
                    "`SemanticIndex(encoder=...)`), or give embeddings instead",
                    None,
                )
            vectors = encode_texts(self.encoder, value, self.batch_size, name=name)
        else:
            vectors = check_embeddings(name, value, allow_empty=False)
        if self._dim is not None and vectors.shape[1] != self._dim:
            fail(
                f"{name}.shape[1]",
                f"the index's embedding dimension ({self._dim})",
                vectors.shape[1],
            )
        if self.metric == "cosine":
            vectors = l2_normalize_rows(vectors)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _check_ids(self, ids, num):
        if ids is None:
            if self._id_kind == "str":
                fail(
                    "ids",
                    "given for an index whose items have string ids",
                    None,
                )
            positions = np.arange(self._size, self._size + num, dtype=np.int64)
            if self._explicit_ids:
                self._check_unique(positions)
            return positions, "int"
        if isinstance(ids, str):
            fail("ids", "a list or 1-D array of ints or strings", ids, TypeError)
        array = to_numpy(ids)
        if array.ndim != 1 or array.shape[0] != num:
            fail("ids.shape", f"({num},): one id per added item", array.shape)
        if array.dtype.kind in "iu":
            array, kind = array.astype(np.int64), "int"
        elif array.dtype.kind in "UO" and all(isinstance(i, str) for i in array):
            array, kind = array.astype(str), "str"
        else:
            fail(
                "ids",
                "a list or 1-D array of ints or strings",
                summarize(ids),
                TypeError,
            )
        if self._id_kind is not None and kind != self._id_kind:
            fail(
                "ids",
                f"{self._id_kind} ids like those already in the index",
                summarize(ids),
                TypeError,
            )
        self._check_unique(array)
        return array, kind

    def _check_unique(self, new_ids):
        existing = self.ids
        combined = np.concatenate([existing, new_ids]) if len(existing) else new_ids
        unique, counts = np.unique(combined, return_counts=True)
        if len(unique) != len(combined):
            fail(
                "ids",
                "unique (within the call and across the index)",
                shown_as(
                    f"ids including {unique[counts > 1][0].item()!r} more than once"
                ),
            )

    def add(self, texts_or_embeddings, ids=None):
        """Adds items: a `(N, dim)` array of embeddings or a list of N texts.

        Args:
            texts_or_embeddings: an array or backend tensor of shape `(N, dim)`,
                or a non-empty list of str (needs `encoder`).
            ids: optional unique ids, one per item (ints or strings); by default
                the items' positions in the index (0, 1, 2, ... in the order of
                adding).

        Returns:
            The index itself, so that `SemanticIndex().add(x)` can be chained.
        """
        vectors = self._vectors("texts_or_embeddings", texts_or_embeddings)
        id_array, kind = self._check_ids(ids, len(vectors))
        self._explicit_ids = self._explicit_ids or ids is not None
        self._id_kind = kind
        self._dim = vectors.shape[1]
        self._parts.append(vectors)
        self._id_parts.append(id_array)
        self._size += len(vectors)
        self._matrix_cache, self._ids_cache, self._blocks_cache = None, None, None
        if self.backend == "hnsw":
            self._graph_add(vectors)
        return self

    # --------------------------------------------------------------- searching

    def search(self, queries, k=10):
        """The `k` best items for each query, best first.

        Args:
            queries: a `(num_queries, dim)` array or tensor, or a non-empty list
                of str (needs `encoder`).
            k: items per query, in `[1, len(index)]`.

        Returns:
            `(ids, scores)`: NumPy arrays of shape `(num_queries, k)`; `ids`
            holds the items' ids (int64, or str when the ids were strings),
            `scores` the float32 scores in non-increasing order along each row.
        """
        if self._size == 0:
            raise ValueError(
                "The index is empty: `add` embeddings or texts before `search`."
            )
        if not is_int(k):
            fail("k", f"an int in [1, {self._size}]", summarize(k), TypeError)
        if not 1 <= k <= self._size:
            fail(
                "k",
                f"an int in [1, {self._size}] (at most the number of indexed items)",
                k,
            )
        queries = self._vectors("queries", queries)
        positions, scores = self.search_positions(queries, int(k))
        return self.ids[positions], scores

    def search_positions(self, queries, k):
        """Like `search` for prepared float32 queries, returning row positions.

        For the library's own callers (kNN classification, paraphrase mining)
        whose inputs are already checked: `queries` must be a float32 array of
        the index's dimension (unit rows for cosine) and `k` in
        `[1, len(index)]`.
        """
        if len(queries) == 0:
            return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
        if self.backend == "hnsw":
            return self._graph_search(queries, k)
        return self._exact_search(queries, k)

    def _blocks(self):
        """Transposed blocks (tensors) of the stored rows, with their offsets."""
        if self._blocks_cache is None:
            matrix, blocks = self.embeddings, []
            for start in range(0, len(matrix), self.block_size):
                part = matrix[start : start + self.block_size]
                # Transposed once here rather than once per query batch.
                block = ops.convert_to_tensor(np.ascontiguousarray(part.T))
                bias = None
                if self.metric == "euclidean":
                    # Ranking by q.x - |x|^2 / 2 is ranking by -|q - x|.
                    bias = ops.convert_to_tensor(-0.5 * np.sum(part * part, axis=1))
                blocks.append((start, block, bias))
            self._blocks_cache = blocks
        return self._blocks_cache

    def _exact_search(self, queries, k):
        blocks = self._blocks()
        num_queries = len(queries)
        batch_size = min(self.query_batch_size, num_queries)
        # Equal-sized query batches, so each backend op sees one shape (the
        # padding rows of the last batch are dropped from the output).
        padding = -num_queries % batch_size
        padded = np.concatenate(
            [queries, np.zeros((padding, queries.shape[1]), np.float32)]
        )
        all_positions, all_scores = [], []
        for start in range(0, len(padded), batch_size):
            batch = ops.convert_to_tensor(padded[start : start + batch_size])
            best_scores, best_positions = None, None
            for offset, block, bias in blocks:
                scores = ops.matmul(batch, block)
                if bias is not None:
                    scores = scores + bias
                scores, index = ops.top_k(scores, min(k, block.shape[1]))
                scores = ops.convert_to_numpy(scores)
                positions = ops.convert_to_numpy(index).astype(np.int64) + offset
                if best_scores is not None:
                    scores = np.concatenate([best_scores, scores], axis=1)
                    positions = np.concatenate([best_positions, positions], axis=1)
                    # Stable: among equal scores the earlier row wins, as in a
                    # single top-k over all rows.
                    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
                    scores = np.take_along_axis(scores, order, axis=1)
                    positions = np.take_along_axis(positions, order, axis=1)
                best_scores, best_positions = scores, positions
            all_scores.append(best_scores)
            all_positions.append(best_positions)
        positions = np.concatenate(all_positions)[:num_queries]
        scores = np.concatenate(all_scores)[:num_queries].astype(np.float32)
        if self.metric == "euclidean":
            squared = np.sum(queries * queries, axis=1, keepdims=True) - 2 * scores
            scores = -np.sqrt(np.maximum(squared, 0.0)).astype(np.float32)
        return positions, scores

    def _graph_add(self, vectors):
        faiss = self._faiss
        if self._graph is None:
            metric = (
                faiss.METRIC_L2
                if self.metric == "euclidean"
                else faiss.METRIC_INNER_PRODUCT
            )
            self._graph = faiss.IndexHNSWFlat(vectors.shape[1], self.hnsw_m, metric)
            self._graph.hnsw.efConstruction = self.ef_construction
        self._graph.add(vectors)

    def _graph_search(self, queries, k):
        self._graph.hnsw.efSearch = max(self.ef_search, k)
        scores, positions = self._graph.search(
            np.ascontiguousarray(queries, dtype=np.float32), k
        )
        positions = positions.astype(np.int64)
        scores = scores.astype(np.float32)
        if self.metric == "euclidean":  # Faiss gives squared distances.
            scores = -np.sqrt(np.maximum(scores, 0.0))
        # A query whose graph walk found fewer than k items (possible on small or
        # badly connected graphs) is answered exactly.
        short = np.flatnonzero(np.any(positions < 0, axis=1))
        if len(short):
            positions[short], scores[short] = self._exact_search(queries[short], k)
        return positions, scores
