"""Streaming (row-blocked) log-sum-exp over a similarity matrix (private).

The softmax losses (NT-Xent, InfoNCE, symmetric InfoNCE) all reduce to

    lse_i = logsumexp_j <q_i, c_j>        (column `exclude[i]` left out, if given)

for queries q (n, d) (already divided by the temperature) and candidates c (m, d).
`blocked_logsumexp` computes it `block_size` rows of q at a time and never holds
the (n, m) matrix: each block's (block, m) logits are made, reduced to their
row-wise log-sum-exp and dropped. The gradient is custom, as in FlashAttention
(Dao et al. 2022): with p = exp(s - lse) the softmax of a block,

    dq_block = (g * p) @ c          dc += (g * p)^T @ q_block

and only (n, d)- and (m, d)-sized tensors are kept between the passes, so the
memory is O((n + m) d + block * m) instead of O(n m).

While a block's softmax is at hand, the forward pass (when a gradient is wanted)
also accumulates A = p @ c (n, d) and B = p^T @ q (m, d). Then dq = g * A for any
upstream gradient g, and dc = g_0 * B when g is the same for every row, as it is
for an unweighted mean of the per-row losses (every loss's default reduction):
the backward pass is O((n + m) d), and a step costs 3 matmuls and one set of
elementwise passes over the logits, as the dense loss does. Any other g (sample
weights, the log-add-exp of InfoNCE's extra negatives) recomputes each block's
softmax for dc, one more matmul per block.

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


def resolve_block_size(block_size, x, rows_per_input_row=1, whole_on_torch=False):
    """The block size for a loss whose queries are `rows_per_input_row` rows per
    row of the tensor `x`: `block_size` when given, else the context's default
    when there are more query rows than it (or their number is unknown in
    Python), else None (dense).

    With `whole_on_torch`, a dense call on PyTorch becomes one block of all the
    query rows: `blocked_logsumexp`'s in-place passes and forward-accumulated
    products beat PyTorch's fused cross-entropy kernel there (NT-Xent at
    N = 1,024: about 1.2x the matmul floor against 1.55x; `benchmarks/losses.py`).
    The other backends' dense paths are as fast (XLA's fusion, TensorFlow's
    softmax kernel)."""
    block_size = check_block_size(block_size)
    if block_size is not None:
        return block_size
    n = static_dim(x, 0)
    default = getattr(_DEFAULT, "value", None)
    if default is not None:
        default, min_rows = default
        if n is None or n * rows_per_input_row > max(default, min_rows):
            return default
    if whole_on_torch and keras.backend.backend() == "torch":
        return max(1, n * rows_per_input_row)
    return None


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
    from jax.custom_derivatives import SymbolicZero

    def pad_rows(x, value=0):
        n = x.shape[0]
        pad = -n % block
        if pad:
            widths = [(0, pad)] + [(0, 0)] * (x.ndim - 1)
            x = jnp.pad(x, widths, constant_values=value)
        return x.reshape((-1, block) + x.shape[1:])

    def blocks(e, n):
        return pad_rows(e, -1) if masked else jnp.zeros((-(-n // block), 0))

    def logits(q, c, e):
        s = q @ c.T
        if masked:
            cols = jnp.arange(c.shape[0], dtype=e.dtype)
            s = jnp.where(cols[None, :] == e[:, None], -BIG, s)
        return s

    def forward(q, c, e, want_q=False, want_c=False):
        """(lse, A = p @ c or None, B = p^T @ q or None); padded query rows
        are zeros, so they add nothing to B."""

        def one(b, args):
            qb, eb = args
            s = logits(qb, c, eb)
            top = jax.lax.stop_gradient(jnp.max(s, axis=1, keepdims=True))
            e = jnp.exp(s - top)
            total = jnp.sum(e, axis=1, keepdims=True)
            a = (e @ c) / total if want_q else None
            if want_c:
                b = b + e.T @ (qb / total)
            return b, ((top + jnp.log(total))[:, 0], a)

        b0 = jnp.zeros_like(c) if want_c else None
        b, (value, a) = jax.lax.scan(one, b0, (pad_rows(q), blocks(e, q.shape[0])))
        n = q.shape[0]
        a = None if a is None else a.reshape((-1, q.shape[1]))[:n]
        return value.reshape(-1)[:n], a, b

    @jax.custom_vjp
    def lse(q, c, e):
        return forward(q, c, e)[0]

    def lse_fwd(q, c, e):
        # symbolic_zeros: `perturbed` says (while tracing) whether an input
        # needs a gradient, e.g. not MoCo's queue, so A or B is skipped.
        want_q, want_c = q.perturbed, c.perturbed
        q, c, e = q.value, c.value, None if e is None else e.value
        value, a, b = forward(q, c, e, want_q, want_c)
        return value, (q, c, e, value, a, b)

    def recompute_dc(q, c, e, value, g):
        def step(dc, args):
            qb, eb, gb, lb = args
            w = jnp.exp(logits(qb, c, eb) - lb[:, None]) * gb[:, None]
            return dc + w.T @ qb, None

        args = (pad_rows(q), blocks(e, q.shape[0]), pad_rows(g), pad_rows(value))
        return jax.lax.scan(step, jnp.zeros_like(c), args)[0]

    def lse_bwd(saved, g):
        q, c, e, value, a, b = saved
        if isinstance(g, SymbolicZero):
            return None, None, None
        g = g.astype(q.dtype)
        dq = None if a is None else a * g[:, None]
        dc = None
        if b is not None:
            dc = jax.lax.cond(
                jnp.all(g == g[0]),
                lambda: b * g[0],
                lambda: recompute_dc(q, c, e, value, g),
            )
        return dq, dc, None

    lse.defvjp(lse_fwd, lse_bwd, symbolic_zeros=True)
    _JAX_CACHE[key] = lse
    return lse


# --------------------------------------------------------------------- TensorFlow


def _tf_lse(queries, candidates, exclude, block):
    import tensorflow as tf

    # Without XLA every elementwise op is a pass over the (block, m) logits: the
    # self column is masked by a scatter of one entry per row (not a one-hot
    # matrix), and 1 / total and g scale (block, d) operands, not the softmax.
    # The matmuls take their operands in the layouts TensorFlow's CPU kernel
    # runs fastest (measured at block 256, m = 2,048, d = 128): c transposed
    # once to (d, m) rather than `transpose_b` in every block (11 vs 14 ms for
    # the 8 blocks), and B accumulated transposed, (d, m) += (q_b / total)^T e,
    # rather than (m, d) += e^T (q_b / total) (12 vs 18 ms).

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
        qs, ct = padded(q), tf.transpose(c)
        es = padded(exclude) if exclude is not None else None
        num = tf.shape(qs)[0]

        # TensorFlow cannot tell whether a gradient will be asked for, so A and
        # B are always accumulated (padded query rows are zeros: nothing to B).
        def body(i, out, a, bt):
            qb = qs[i]
            eb = None if es is None else es[i]
            s = masked(tf.matmul(qb, ct), eb)
            top = tf.reduce_max(s, axis=1, keepdims=True)
            e = tf.exp(s - top)
            total = tf.reduce_sum(e, axis=1, keepdims=True)
            out = out.write(i, (top + tf.math.log(total))[:, 0])
            a = a.write(i, tf.matmul(e, c) / total)
            return i + 1, out, a, bt + tf.matmul(qb / total, e, transpose_a=True)

        _, out, a, bt = tf.while_loop(
            lambda i, *_: i < num,
            body,
            (
                tf.constant(0),
                tf.TensorArray(tf.float32, size=num),
                tf.TensorArray(q.dtype, size=num),
                tf.zeros_like(ct),
            ),
            parallel_iterations=1,
        )
        b = tf.transpose(bt)
        value = tf.reshape(out.stack(), [-1])[:n]
        a = tf.reshape(a.stack(), [-1, tf.shape(q)[1]])[:n]

        def recompute_dc(g):
            gs, ls = padded(g), padded(value)

            def body(i, dct):
                qb = qs[i]
                eb = None if es is None else es[i]
                s = masked(tf.matmul(qb, ct), eb)
                p = tf.exp(s - ls[i][:, None])
                return i + 1, dct + tf.matmul(qb * gs[i][:, None], p, transpose_a=True)

            return tf.transpose(
                tf.while_loop(
                    lambda i, _: i < num,
                    body,
                    (tf.constant(0), tf.zeros_like(ct)),
                    parallel_iterations=1,
                )[1]
            )

        def grad(g):
            g = tf.cast(g, q.dtype)
            first = tf.reduce_sum(g[:1])  # g[0]; 0 for an empty batch
            dc = tf.cond(
                tf.reduce_all(tf.equal(g, first)),
                lambda: b * first,
                lambda: recompute_dc(g),
            )
            return a * g[:, None], dc

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
        def forward(ctx, q, c, exclude, block, grad_enabled):
            n = q.shape[0]
            value = q.new_empty(n)
            # Inside forward grad mode is off and needs_input_grad ignores it.
            want_q, want_c = (grad_enabled and w for w in ctx.needs_input_grad[:2])
            a = torch.empty_like(q) if want_q else None
            b = torch.zeros_like(c) if want_c else None
            for start in range(0, n, block):
                rows = slice(start, start + block)
                eb = None if exclude is None else exclude[rows]
                # In place: one (block, m) buffer for logits and their exp.
                e = logits(q[rows], c, eb)
                top = e.amax(dim=1, keepdim=True)
                total = e.sub_(top).exp_().sum(dim=1, keepdim=True)
                value[rows] = (top + total.log()).squeeze(1)
                # p = e / total, scaled on the (block, d) side.
                if want_q:
                    torch.matmul(e, c, out=a[rows]).div_(total)
                if want_c:
                    b.addmm_(e.T, q[rows] / total)
            ctx.save_for_backward(q, c, value, a, b)
            ctx.exclude, ctx.block = exclude, block
            return value

        @staticmethod
        def backward(ctx, g):
            q, c, value, a, b = ctx.saved_tensors
            g = g.to(q.dtype)
            dq = None if a is None else a * g[:, None]
            if b is None or bool((g == g[:1]).all()):
                return dq, None if b is None else b * g[:1], None, None, None
            dc = torch.zeros_like(c)
            for start in range(0, q.shape[0], ctx.block):
                rows = slice(start, start + ctx.block)
                eb = None if ctx.exclude is None else ctx.exclude[rows]
                w = logits(q[rows], c, eb)
                w = w.sub_(value[rows, None]).exp_().mul_(g[rows, None])
                dc.addmm_(w.T, q[rows])
            return dq, dc, None, None, None

    def lse(q, c, exclude, block):
        return BlockedLogSumExp.apply(q, c, exclude, block, torch.is_grad_enabled())

    _TORCH_LSE.append(lse)
    return lse
