"""Streaming (row-blocked) log-sum-exp over a similarity matrix (private).

The softmax losses (NT-Xent, InfoNCE, symmetric InfoNCE) all reduce to

    lse_i = logsumexp_j <q_i, c_j>        (column `exclude[i]` left out, if given)

for queries q (n, d) (already divided by the temperature) and candidates c (m, d).
`blocked_logsumexp` computes it `block_size` rows of q at a time and never holds
the (n, m) matrix: each block's (block, m) logits are made, reduced to their
row-wise log-sum-exp and dropped. The gradient is custom, as in FlashAttention
(Dao et al. 2022): only q, c and the (n,) log-sum-exps are kept, and the backward
pass recomputes each block's logits to get its softmax p = exp(s - lse):

    dq_block = (g * p) @ c          dc += (g * p)^T @ q_block

so the memory is O((n + m) d + block * m) instead of O(n m), for one extra
(block, m) matmul per block (4 matmuls in all instead of 3).

One implementation per backend, as `_common.rows_logsumexp` has: `jax.custom_vjp`
with `lax.map` / `lax.scan` over the blocks (static shapes), `tf.custom_gradient`
with `tf.while_loop`s (the batch size may be dynamic inside `fit`'s traced step),
and a `torch.autograd.Function` with a Python loop (eager).

`default_block_size(block_size)` is the context in which the losses that support
streaming use it when called without `block_size` on more rows than the block (the
gradient cache wraps its full-batch loss in it).
"""

import contextlib
import threading

import keras
from keras import ops

from keras_contrastive._validation import check_positive_int
from keras_contrastive.losses._common import BIG, static_dim

_DEFAULT = threading.local()


def check_block_size(block_size):
    """None (dense) or a positive int (streaming); anything else raises."""
    if block_size is None:
        return None
    return check_positive_int("block_size", block_size)


@contextlib.contextmanager
def default_block_size(block_size, min_rows=0):
    """Within it, streaming losses called without `block_size` use `block_size`
    when they have more query rows than `block_size` and `min_rows` (or a batch
    size unknown in Python).

    Example:

    >>> import numpy as np
    >>> from keras_contrastive.losses import nt_xent
    >>> z = np.random.default_rng(0).normal(size=(6, 4))
    >>> with default_block_size(4):  # 12 rows: streamed in blocks of 4
    ...     streamed = nt_xent(z[:3] * 1.0, z[3:] * 1.0)
    >>> bool(np.allclose(streamed, nt_xent(z[:3], z[3:]), atol=1e-5))
    True
    """
    block_size = check_block_size(block_size)
    previous = getattr(_DEFAULT, "value", None)
    _DEFAULT.value = None if block_size is None else (block_size, int(min_rows))
    try:
        yield
    finally:
        _DEFAULT.value = previous


def resolve_block_size(block_size, x, rows_per_input_row=1):
    """The block size for a loss whose queries are `rows_per_input_row` rows per
    row of the tensor `x`: `block_size` when given, else the context's default
    when there are more query rows than it (or their number is unknown in
    Python), else None (dense)."""
    block_size = check_block_size(block_size)
    if block_size is not None:
        return block_size
    default = getattr(_DEFAULT, "value", None)
    if default is None:
        return None
    default, min_rows = default
    n = static_dim(x, 0)
    if n is not None and n * rows_per_input_row <= max(default, min_rows):
        return None
    return default


def blocked_logsumexp(queries, candidates, block_size, exclude=None):
    """logsumexp_j <queries_i, candidates_j> per row, `block_size` rows at a time.

    Args:
        queries: (n, d) float32 (already divided by the temperature).
        candidates: (m, d) float32.
        block_size: positive int, query rows per block.
        exclude: optional (n,) int32: column `exclude[i]` is left out of row i
            (NT-Xent's self-similarity), as a logit of -1e9 (`_common.BIG`).

    Returns:
        (n,) float32; gradients reach `queries` and `candidates`.
    """
    block_size = check_positive_int("block_size", block_size)
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_lse(block_size, exclude is not None)(queries, candidates, exclude)
    if backend == "tensorflow":
        return _tf_lse(queries, candidates, exclude, block_size)
    if backend == "torch":
        return _torch_lse()(queries, candidates, exclude, block_size)
    # Any other backend: the dense computation (same value, O(n m) memory).
    logits = ops.matmul(queries, ops.transpose(candidates))
    if exclude is not None:
        logits = logits - ops.one_hot(exclude, ops.shape(candidates)[0]) * BIG
    return ops.logsumexp(logits, axis=1)


# ---------------------------------------------------------------------------- JAX

_JAX_CACHE = {}


def _jax_lse(block, masked):
    key = (block, masked)
    if key in _JAX_CACHE:
        return _JAX_CACHE[key]
    import jax
    import jax.numpy as jnp

    def pad_rows(x, value=0):
        n = x.shape[0]
        pad = -n % block
        if pad:
            widths = [(0, pad)] + [(0, 0)] * (x.ndim - 1)
            x = jnp.pad(x, widths, constant_values=value)
        return x.reshape((-1, block) + x.shape[1:])

    def logits(q, c, e):
        s = q @ c.T
        if masked:
            cols = jnp.arange(c.shape[0], dtype=e.dtype)
            s = jnp.where(cols[None, :] == e[:, None], -BIG, s)
        return s

    def forward(q, c, e):
        e = pad_rows(e, -1) if masked else jnp.zeros((-(-q.shape[0] // block), 0))

        def one(args):
            qb, eb = args
            s = logits(qb, c, eb)
            m = jax.lax.stop_gradient(jnp.max(s, axis=1))
            return m + jnp.log(jnp.sum(jnp.exp(s - m[:, None]), axis=1))

        return jax.lax.map(one, (pad_rows(q), e)).reshape(-1)[: q.shape[0]]

    @jax.custom_vjp
    def lse(q, c, e):
        return forward(q, c, e)

    def lse_fwd(q, c, e):
        value = forward(q, c, e)
        return value, (q, c, e, value)

    def lse_bwd(saved, g):
        q, c, e, value = saved
        n = q.shape[0]
        eb = pad_rows(e, -1) if masked else jnp.zeros((-(-n // block), 0))

        def step(dc, args):
            qb, ebb, gb, lb = args
            w = jnp.exp(logits(qb, c, ebb) - lb[:, None]) * gb[:, None]
            return dc + w.T @ qb, w @ c

        dc, dq = jax.lax.scan(
            step,
            jnp.zeros_like(c),
            (pad_rows(q), eb, pad_rows(g.astype(q.dtype)), pad_rows(value)),
        )
        dq = dq.reshape((-1, q.shape[1]))[:n]
        return dq, dc, None

    lse.defvjp(lse_fwd, lse_bwd)
    _JAX_CACHE[key] = lse
    return lse


# --------------------------------------------------------------------- TensorFlow


def _tf_lse(queries, candidates, exclude, block):
    import tensorflow as tf

    # Without XLA every elementwise op is a pass over the (block, m) logits: the
    # self column is masked by a scatter of one entry per row (not a one-hot
    # matrix), and backward g scales the (block, d) operand and result instead
    # of the (block, m) softmax.

    def masked(s, eb):
        if eb is None:
            return s
        rows = tf.range(tf.shape(s)[0])
        index = tf.stack([rows, eb], axis=1)
        return tf.tensor_scatter_nd_update(s, index, tf.fill(tf.shape(rows), -BIG))

    def padded(x):
        n = tf.shape(x)[0]
        pad = (block - n % block) % block
        widths = [[0, pad]] + [[0, 0]] * (len(x.shape) - 1)
        # Padding rows exclude column 0: harmless, their values are dropped.
        x = tf.pad(x, widths)
        return tf.reshape(x, tf.concat([[-1, block], tf.shape(x)[1:]], axis=0))

    @tf.custom_gradient
    def lse(q, c):
        n = tf.shape(q)[0]
        qs = padded(q)
        es = padded(exclude) if exclude is not None else None
        num = tf.shape(qs)[0]

        def body(i, out):
            eb = None if es is None else es[i]
            s = masked(tf.matmul(qs[i], c, transpose_b=True), eb)
            m = tf.reduce_max(s, axis=1)
            total = tf.reduce_sum(tf.exp(s - m[:, None]), axis=1)
            return i + 1, out.write(i, m + tf.math.log(total))

        _, out = tf.while_loop(
            lambda i, _: i < num,
            body,
            (tf.constant(0), tf.TensorArray(tf.float32, size=num)),
            parallel_iterations=1,
        )
        value = tf.reshape(out.stack(), [-1])[:n]

        def grad(g):
            gs = padded(tf.cast(g, q.dtype))
            ls = padded(value)

            def body(i, dc, dq):
                qb, gb = qs[i], gs[i][:, None]
                eb = None if es is None else es[i]
                s = masked(tf.matmul(qb, c, transpose_b=True), eb)
                p = tf.exp(s - ls[i][:, None])
                dc = dc + tf.matmul(p, qb * gb, transpose_a=True)
                return i + 1, dc, dq.write(i, tf.matmul(p, c) * gb)

            _, dc, dq = tf.while_loop(
                lambda i, *_: i < num,
                body,
                (
                    tf.constant(0),
                    tf.zeros_like(c),
                    tf.TensorArray(q.dtype, size=num),
                ),
                parallel_iterations=1,
            )
            dq = tf.reshape(dq.stack(), [-1, tf.shape(q)[1]])[:n]
            return dq, dc

        return value, grad

    return lse(queries, candidates)


# ------------------------------------------------------------------------ PyTorch

_TORCH_LSE = []


def _torch_lse():
    if _TORCH_LSE:
        return _TORCH_LSE[0]
    import torch

    def logits(qb, c, eb):
        s = qb @ c.T
        if eb is not None:
            s.scatter_(1, eb[:, None].long(), -BIG)
        return s

    class BlockedLogSumExp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, c, exclude, block):
            n = q.shape[0]
            value = q.new_empty(n)
            for start in range(0, n, block):
                rows = slice(start, start + block)
                eb = None if exclude is None else exclude[rows]
                value[rows] = torch.logsumexp(logits(q[rows], c, eb), dim=1)
            ctx.save_for_backward(q, c, value)
            ctx.exclude, ctx.block = exclude, block
            return value

        @staticmethod
        def backward(ctx, g):
            q, c, value = ctx.saved_tensors
            exclude, block = ctx.exclude, ctx.block
            dq = torch.empty_like(q)
            dc = torch.zeros_like(c)
            g = g.to(q.dtype)
            for start in range(0, q.shape[0], block):
                rows = slice(start, start + block)
                eb = None if exclude is None else exclude[rows]
                # In place: one (block, m) buffer for logits, softmax and weights.
                w = logits(q[rows], c, eb)
                w = w.sub_(value[rows, None]).exp_().mul_(g[rows, None])
                torch.matmul(w, c, out=dq[rows])
                dc.addmm_(w.T, q[rows])
            return dq, dc, None, None

    _TORCH_LSE.append(BlockedLogSumExp.apply)
    return BlockedLogSumExp.apply
