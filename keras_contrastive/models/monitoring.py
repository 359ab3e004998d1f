"""What a contrastive step logs besides its loss: retrieval accuracy and collapse."""

from keras import ops

from keras_contrastive import distribute
from keras_contrastive.losses import cosine_similarity_matrix
from keras_contrastive.losses._common import (
    l2_normalize,
    mask_columns_logits,
    to_float32,
)
from keras_contrastive.losses._streaming import resolve_block_size
from keras_contrastive.losses.view_pair import _nt_xent_parts, nt_xent_logits


def embedding_std(z):
    """Mean over dimensions of the batch std of L2-normalised rows of `z`.

    The collapse monitor of SimSiam (Chen & He 2021, fig. 2): it tends to 0 when every
    input maps to the same point and to about 1/sqrt(d) for well-spread embeddings.
    """
    return ops.mean(ops.std(l2_normalize(to_float32(z)), axis=0))


def top1_accuracy(similarity, positive_index):
    """Fraction of rows whose most similar candidate is their positive.

    Args:
        similarity: (rows, candidates) scores; entries that are not candidates should
            already be masked out with a large negative value.
        positive_index: (rows,) integer column of each row's positive.
    """
    predicted = ops.argmax(similarity, axis=-1)
    hits = ops.equal(ops.cast(predicted, "int32"), ops.cast(positive_index, "int32"))
    return ops.mean(ops.cast(hits, "float32"))


def global_row_index(rows):
    """Each local row's index in the global (every replica's) batch."""
    n = ops.shape(rows)[0]
    return ops.arange(n, dtype="int32") + distribute.replica_offset(n)


def view_pair_accuracy(z_a, z_b):
    """Top-1 retrieval of row i of `z_b` among all rows of `z_b` (of every
    replica) for row i of `z_a`."""
    similarity = cosine_similarity_matrix(z_a, distribute.gather(z_b))
    return top1_accuracy(similarity, global_row_index(z_a))


def nt_xent_accuracy(z_a, z_b, block_size=None):
    """Top-1 retrieval of each view's twin among NT-Xent's candidates: every other
    view of the (global) batch (Chen et al. 2020, eq. 1).

    With `block_size` (or inside the gradient cache's `default_block_size` at a
    large batch) the (2N, 2N) similarity matrix is never held: `block_size` rows
    of it at a time, as the streaming losses do.
    """
    block_size = resolve_block_size(block_size, z_a, rows_per_input_row=2)
    if block_size is None:
        logits, _, twin, self_index = nt_xent_logits(z_a, z_b, temperature=1.0)
        return top1_accuracy(mask_columns_logits(logits, self_index), twin)
    queries, columns, _, twin, self_index = _nt_xent_parts(z_a, z_b, 1.0)
    return blocked_top1_accuracy(queries, columns, twin, self_index, block_size)


def blocked_top1_accuracy(queries, candidates, positive_index, exclude, block_size):
    """`top1_accuracy` of `queries @ candidates.T` with column `exclude[i]` masked
    in row i, computed `block_size` rows at a time (memory O(block_size x m)).

    A `fori_loop` over the blocks (the rows are padded to whole blocks and the
    padding never counts) so that it also runs where the batch size is unknown
    in Python, as in TensorFlow's traced step.
    """
    rows, dim = ops.shape(queries)[0], ops.shape(queries)[1]
    num_blocks = (rows + block_size - 1) // block_size
    pad = num_blocks * block_size - rows
    queries = ops.pad(queries, [[0, pad], [0, 0]])
    # A padded row's positive is column -1, which argmax never returns.
    positive_index = ops.pad(
        ops.cast(positive_index, "int32"), [[0, pad]], constant_values=-1
    )
    exclude = ops.pad(ops.cast(exclude, "int32"), [[0, pad]])
    candidates_t = ops.transpose(candidates)

    def block_hits(i, hits):
        start = i * block_size
        logits = ops.matmul(
            ops.slice(queries, [start, 0], [block_size, dim]), candidates_t
        )
        logits = mask_columns_logits(logits, ops.slice(exclude, [start], [block_size]))
        predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
        positive = ops.slice(positive_index, [start], [block_size])
        return hits + ops.sum(ops.cast(ops.equal(predicted, positive), "float32"))

    hits = ops.fori_loop(0, num_blocks, block_hits, ops.zeros((), "float32"))
    return hits / ops.cast(rows, "float32")


def view_pair_stats(z_a, z_b, projections=None):
    """`contrastive_accuracy` (retrieval of `z_b[i]` for `z_a[i]`) and
    `embedding_std` of `projections` (default `z_a`)."""
    return {
        "contrastive_accuracy": view_pair_accuracy(z_a, z_b),
        "embedding_std": embedding_std(z_a if projections is None else projections),
    }
