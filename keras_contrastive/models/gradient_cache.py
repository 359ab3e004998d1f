"""Gradient caching: the gradients of a large batch at the memory of one chunk.

The technique of Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size
under Memory Limited Setup" (sentence-transformers' `CachedMultipleNegativesRanking
Loss`). An in-batch contrastive loss couples every row with every other, so the batch
cannot simply be split into micro-batches whose gradients are summed. But the loss
only depends on the network through its *outputs*, which are small:

1. pass 1: run `forward_pass` chunk by chunk without recording anything for
   autodiff, and concatenate the outputs (embeddings);
2. evaluate the loss once on the full outputs and take its gradient with respect to
   them (and to any variable the loss itself uses, e.g. a learnable temperature);
3. pass 2: re-run `forward_pass` chunk by chunk, this time differentiably, and
   back-propagate each chunk's slice of the cached output gradients. The sum over
   chunks is, by the chain rule, the gradient of the full-batch loss.

Only one chunk's activations are alive at a time. The price is a second forward pass.

Pass 2 must recompute exactly what pass 1 computed: before each chunk the seed
generators (augmentation, dropout) are put back to their state before that chunk in
pass 1. After the step the non-trainable state is the one pass 1 left, so batch-norm
moving statistics move once per chunk, not twice.

The three backend functions (reached through the model's `GradientCache`:
`model.gradient_cache.tensorflow_gradients(...)`, ...) return `(loss, stats,
outputs, gradients)` for the trainable variables; the train steps in
`backend_steps` then apply the optimizer, `post_step` and the metrics exactly as on
the plain path. Each is written as the three steps above:
`_pass1_without_graph`, `_output_gradients`, `_pass2_accumulate`.
"""

import keras
from keras import ops

from keras_contrastive._validation import check_positive_int, fail, is_int
from keras_contrastive.losses._streaming import default_block_size
from keras_contrastive.models import backend_steps
from keras_contrastive.models.jax_convolution import kernel_gradient_as_matmuls

_SEED_STATE_NAME = "seed_generator_state"
# Below this many query rows the loss's (rows, rows) matrix (16 MiB at 2,048) is
# not what bounds the memory: the loss stays dense there.
_STREAM_MIN_ROWS = 2048


@keras.saving.register_keras_serializable(package="keras_contrastive")
class GradientCache:
    """Train on batches larger than memory allows, with the full-batch gradient.

    Pass it to a method that supports it (`SimCLR(..., gradient_cache=...)`, or
    simply `gradient_cache=256`): each training batch is embedded in chunks of
    `chunk_size` rows without keeping activations, the loss and its gradient with
    respect to the embeddings are computed on the whole batch, and the encoder is
    re-run chunk by chunk to back-propagate those gradients (Gao et al. 2021). Loss
    and gradients equal the plain full-batch step's (up to float rounding) at the
    peak activation memory of one chunk, for one extra forward pass of the encoder
    (with backward ~ 2x forward, ~4/3 of the plain step's compute in theory).
    NT-Xent, InfoNCE and symmetric InfoNCE stream their similarity matrix in
    blocks of `chunk_size` rows above 2,048 query rows; other losses (SigLIP,
    Barlow Twins, supervised contrastive) compute theirs whole, and at very large
    batches that matrix, not the encoder, bounds the memory.

    Requirements and caveats:

    - the method's `forward_pass` must be row-wise: running it on row chunks of the
      batch and concatenating each output along axis 0 gives the full-batch outputs.
      Methods declare this with `supports_gradient_cache = True`.
    - Randomness (augmentation, dropout) is replayed exactly: pass 2 restores every
      seed generator of the model to its state before the same chunk of pass 1. The
      random draws are those of chunk-by-chunk calls, so they differ from an
      unchunked step's draws (same distribution).
    - Batch normalisation normalises each chunk with that chunk's statistics (as
      data parallelism without synchronised batch norm does); its moving statistics
      are updated once per chunk. With batch norm the result is therefore that of
      per-chunk batch norm, not of the full batch; the exact-equality guarantee is
      for encoders without it (layer norm, dropout, random augmentation are fine).
    - Regularisation losses (`model.losses`) are averaged over chunks: exact for
      weight regularisers, and for activity regularisers that average over rows
      when the chunks are equal.
    - On TensorFlow the chunks run in `tf.while_loop`s, so the batch size may be
      dynamic (as in `fit`); XLA does not support that, so there the model's
      `jit_compile` is always False.
    - On JAX the chunks run in `lax.scan`, which reuses one chunk's buffers, so the
      peak memory does not grow with the number of chunks.

    Args:
        chunk_size: positive int, the number of input rows per chunk. The last chunk
            is smaller when the batch is not a multiple of it.

    Example:

    ```python
    import numpy as np
    import keras
    from keras_contrastive.models import GradientCache, SimCLR

    images = np.random.randint(0, 256, (64, 32, 32, 3), dtype="uint8")
    encoder = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    model = SimCLR(encoder, gradient_cache=GradientCache(chunk_size=16))
    model.compile(optimizer="adam")
    model.fit(images, batch_size=64, epochs=1, verbose=0)  # 4 chunks per step
    ```
    """

    def __init__(self, chunk_size):
        self.chunk_size = check_positive_int("chunk_size", chunk_size)

    def get_config(self):
        return {"chunk_size": self.chunk_size}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, GradientCache) and other.chunk_size == self.chunk_size

    def __hash__(self):
        return hash((GradientCache, self.chunk_size))

    def __repr__(self):
        return f"GradientCache(chunk_size={self.chunk_size})"

    # The per-backend cached gradients (module functions below), reached through
    # the model's GradientCache so that `backend_steps` needs no import of this
    # module.

    def tensorflow_gradients(self, model, x, scale_loss):
        return tensorflow_gradients(model, x, scale_loss)

    def torch_gradients(self, model, x, scale_loss):
        return torch_gradients(model, x, scale_loss)

    def jax_gradients(self, model, trainable, non_trainable, x, scale_loss):
        return jax_gradients(model, trainable, non_trainable, x, scale_loss)


ChunkSize = GradientCache
"""An alias of `GradientCache`, kept for code written against its old name."""


def as_gradient_cache(value):
    """`None`, a `GradientCache`, a positive int or a `GradientCache` config dict."""
    if value is None or isinstance(value, GradientCache):
        return value
    if isinstance(value, dict):
        return keras.saving.deserialize_keras_object(value)
    expectation = "None, a GradientCache or a positive int chunk size"
    if is_int(value):
        if value < 1:
            fail("gradient_cache", expectation, value)
        return GradientCache(int(value))
    fail("gradient_cache", expectation, value, TypeError)


# ----------------------------------------------------------------- shared helpers


def _seed_states(model):
    """The state variables of every seed generator the model's layers own."""
    return [v for v in model.non_trainable_variables if v.name == _SEED_STATE_NAME]


def _first(x):
    return keras.tree.flatten(x)[0]


def _static_batch_size(x):
    rows = _first(x).shape[0]
    if rows is None:
        raise ValueError(
            "Gradient caching needs a static batch size on this backend; the input "
            f"batch has shape {tuple(_first(x).shape)}."
        )
    return int(rows)


def _chunk(x, start, size):
    return keras.tree.map_structure(lambda t: t[start : start + size], x)


def _chunks(x, size):
    """Row chunks of the nest `x` (Python loop; static batch size)."""
    return [_chunk(x, start, size) for start in range(0, _static_batch_size(x), size)]


def _concatenate(chunk_outputs):
    return keras.tree.map_structure(
        lambda *parts: ops.concatenate(parts, axis=0), *chunk_outputs
    )


def _float_indices(flat_outputs):
    """Positions of the outputs that can carry gradients (floating dtypes)."""
    return [
        i
        for i, t in enumerate(flat_outputs)
        if "float" in keras.backend.standardize_dtype(t.dtype)
    ]


def _replace(flat, indices, values):
    flat = list(flat)
    for i, value in zip(indices, values):
        flat[i] = value
    return flat


def _row_slices(chunk_outputs, index):
    """(start, stop) rows of output `index` for each chunk in the full output."""
    slices, start = [], 0
    for outputs in chunk_outputs:
        rows = int(keras.tree.flatten(outputs)[index].shape[0])
        slices.append((start, start + rows))
        start += rows
    return slices


def _regularization(model):
    """(the chunk's regularisation loss, or a float32 zero; whether there is one)."""
    value = model.regularization_loss()
    return (ops.zeros((), "float32"), False) if value is None else (value, True)


def _full_batch_loss(model, outputs, regularizations):
    """The method's loss on all rows plus the chunks' mean regularisation.

    The streaming losses (NT-Xent, InfoNCE, symmetric InfoNCE) called without a
    `block_size` stream here in blocks of `chunk_size` rows when they have more
    than `_STREAM_MIN_ROWS` query rows (and more than a chunk; always when the
    batch size is dynamic, as in TensorFlow's traced step): the same value and
    gradient (to float rounding) without the full (N, N) similarity matrix,
    which at large batches would otherwise dominate the peak memory.
    """
    with default_block_size(model.gradient_cache.chunk_size, min_rows=_STREAM_MIN_ROWS):
        loss = ops.cast(model.compute_contrastive_loss(outputs), "float32")
    return loss + ops.mean(regularizations)


def _stats(model, outputs):
    # The logged retrieval accuracy streams like the loss: at a large batch its
    # (N, N) similarity matrix would otherwise set the peak memory.
    with default_block_size(model.gradient_cache.chunk_size, min_rows=_STREAM_MIN_ROWS):
        stats = model.compute_contrastive_stats(outputs)
    return backend_steps.stop_gradient(stats)


def _restorable_state(model):
    """Non-trainable variables that a forward pass may change (not the metrics)."""
    metrics = {id(v) for v in model.metrics_variables}
    return [v for v in model.non_trainable_variables if id(v) not in metrics]


# --------------------------------------------------------------------- TensorFlow


def tensorflow_gradients(model, x, scale_loss):
    """The cached step on TensorFlow: chunks run in `tf.while_loop`s.

    A while loop (not a Python loop over a static batch size) because `fit` traces
    the step with a dynamic batch dimension.

    Args:
        model: a built `ContrastiveModel` whose `gradient_cache` is set.
        x: the input batch, a nest of tensors.
        scale_loss: maps the loss to what the optimizer wants differentiated
            (mixed-precision loss scaling).

    Returns:
        `(loss, stats, outputs, gradients)`, the gradients aligned with
        `model.trainable_variables`.
    """
    import tensorflow as tf

    size = model.gradient_cache.chunk_size
    num_chunks = (tf.shape(_first(x))[0] + size - 1) // size

    def chunk(i):
        return _chunk(x, i * size, size)

    # 1. Graph-less forward pass, chunk by chunk.
    outputs, regularizations, replay = _tensorflow_pass1(model, chunk, num_chunks)
    after_pass1 = [tf.identity(v.value) for v in _restorable_state(model)]
    # 2. The full-batch loss and its gradients w.r.t. the cached outputs.
    loss, output_grads, regularization_grads, direct = _tensorflow_output_gradients(
        model, outputs, regularizations, scale_loss, replay["regularized"]
    )
    # 3. Chunk by chunk again, with a graph: accumulate the parameter gradients.
    gradients = _tensorflow_pass2(
        model, chunk, num_chunks, replay, output_grads, regularization_grads
    )
    # Variables the loss itself reads (a learnable temperature) get their direct
    # gradient on top of what flows through the outputs.
    gradients = [
        g if d is None else g + tf.convert_to_tensor(d)
        for g, d in zip(gradients, direct)
    ]
    for variable, value in zip(_restorable_state(model), after_pass1):
        variable.assign(value)
    return loss, _stats(model, outputs), outputs, gradients


def _tensorflow_output_gradients(model, outputs, regularizations, scale_loss, reg):
    """(loss, [(output index, gradient)], regularisation gradients or None, direct
    gradients of the trainable variables)."""
    import tensorflow as tf

    flat = keras.tree.flatten(outputs)
    floats = _float_indices(flat)
    with tf.GradientTape() as tape:
        tape.watch([flat[i] for i in floats] + [regularizations])
        loss = _full_batch_loss(model, outputs, regularizations)
        scaled_loss = scale_loss(loss)
    grads = tape.gradient(
        scaled_loss,
        [flat[i] for i in floats] + [regularizations] + model.trainable_variables,
    )
    output_grads = [(i, g) for i, g in zip(floats, grads) if g is not None]
    regularization_grads = grads[len(floats)] if reg else None
    return loss, output_grads, regularization_grads, grads[len(floats) + 1 :]


def _tensor_arrays(tensors, size, ragged):
    import tensorflow as tf

    return [
        tf.TensorArray(
            t.dtype,
            size=size,
            # Chunk outputs differ in rows when the last chunk is smaller.
            infer_shape=not ragged,
            element_shape=[None] + t.shape[1:] if ragged else t.shape,
        )
        for t in tensors
    ]


def _write(groups, i, values):
    return [[a.write(i, t) for a, t in zip(g, v)] for g, v in zip(groups, values)]


def _tensorflow_pass1(model, chunk, num_chunks):
    """Forward only: (full outputs, per-chunk regularisation, what pass 2 replays)."""
    import tensorflow as tf

    seeds = _seed_states(model)

    def forward(i):
        # The seed states are read before the chunk's forward pass advances them.
        before = [tf.identity(s.value) for s in seeds]
        outputs = model.forward_pass(chunk(i), training=True)
        flat = keras.tree.flatten(outputs)
        rows = tf.stack([tf.shape(t)[0] for t in flat])
        regularization, regularized = _regularization(model)
        return outputs, [before, flat, [rows, regularization]], regularized

    # Chunk 0 runs outside the loop: the loop's arrays need the outputs' structure.
    outputs0, values0, regularized = forward(0)
    groups = [
        _tensor_arrays(v, num_chunks, ragged=j == 1) for j, v in enumerate(values0)
    ]
    groups = _write(groups, 0, values0)

    def body(i, groups):
        return i + 1, _write(groups, i, forward(i)[1])

    _, (seed_arrays, output_arrays, (rows, regularizations)) = tf.while_loop(
        lambda i, _: i < num_chunks,
        body,
        (tf.constant(1), groups),
        parallel_iterations=1,
    )
    flat = []
    for array, first in zip(output_arrays, values0[1]):
        value = array.concat()
        value.set_shape([None] + first.shape[1:])
        flat.append(value)
    replay = {
        "seeds": seed_arrays,
        "rows": rows.stack(),
        "regularized": regularized,
    }
    return keras.tree.pack_sequence_as(outputs0, flat), regularizations.stack(), replay


def _tensorflow_pass2(model, chunk, num_chunks, replay, output_grads, reg_grads):
    """Differentiable re-run, chunk by chunk: the summed parameter gradients."""
    import tensorflow as tf

    seeds = _seed_states(model)
    variables = model.trainable_variables
    rows = replay["rows"]
    chunk_grads = [
        tf.TensorArray(g.dtype, size=num_chunks, infer_shape=False).split(g, rows[:, i])
        for i, g in output_grads
    ]

    def body(i, total):
        for seed, states in zip(seeds, replay["seeds"]):
            seed.assign(states.read(i))
        with tf.GradientTape() as tape:
            flat = keras.tree.flatten(model.forward_pass(chunk(i), training=True))
            regularization = model.regularization_loss()
        targets = [flat[j] for j, _ in output_grads]
        cotangents = [array.read(i) for array in chunk_grads]
        if reg_grads is not None:
            targets.append(regularization)
            cotangents.append(reg_grads[i])
        # Variables the forward pass does not read (a learnable temperature that
        # only the loss uses) get None: TF's UnconnectedGradients.ZERO cannot
        # make zeros for Keras variables (their dtype is a string).
        grads = tape.gradient(targets, variables, output_gradients=cotangents)
        return i + 1, [
            t if g is None else t + tf.convert_to_tensor(g)
            for t, g in zip(total, grads)
        ]

    zeros = [tf.zeros(v.shape, v.dtype) for v in variables]
    _, total = tf.while_loop(
        lambda i, _: i < num_chunks,
        body,
        (tf.constant(0), zeros),
        parallel_iterations=1,
    )
    return total


# ------------------------------------------------------------------------ PyTorch


def torch_gradients(model, x, scale_loss):
    """The cached step on PyTorch; same contract as `tensorflow_gradients`.

    The parameters' `.grad` must be zero on entry; they hold the gradients on exit.
    """
    import torch

    chunks = _chunks(x, model.gradient_cache.chunk_size)
    seeds = _seed_states(model)
    # 1. Graph-less forward pass, chunk by chunk.
    seeds_before, chunk_outputs, regularizations = [], [], []
    with torch.no_grad():
        for chunk in chunks:
            seeds_before.append([s.value.clone() for s in seeds])
            chunk_outputs.append(model.forward_pass(chunk, training=True))
            regularization, regularized = _regularization(model)
            regularizations.append(regularization)
    after_pass1 = [v.value.clone() for v in _restorable_state(model)]

    # 2. The full-batch loss and its gradients w.r.t. the cached outputs (leaves).
    outputs = _concatenate(chunk_outputs)
    flat = keras.tree.flatten(outputs)
    floats = _float_indices(flat)
    leaves = [flat[i].detach().requires_grad_() for i in floats]
    regularizations = torch.stack(regularizations).requires_grad_()
    loss = _full_batch_loss(
        model,
        keras.tree.pack_sequence_as(outputs, _replace(flat, floats, leaves)),
        regularizations,
    )
    # Also accumulates the direct gradient of variables the loss reads.
    scale_loss(loss).backward()
    used = [(i, leaf.grad) for i, leaf in zip(floats, leaves) if leaf.grad is not None]

    # 3. Chunk by chunk again, with a graph: `.grad` accumulates over chunks.
    slices = {i: _row_slices(chunk_outputs, i) for i, _ in used}
    for c, chunk in enumerate(chunks):
        with torch.no_grad():
            for seed, state in zip(seeds, seeds_before[c]):
                seed.assign(state)
        flat_c = keras.tree.flatten(model.forward_pass(chunk, training=True))
        targets = [flat_c[i] for i, _ in used]
        cotangents = [g[slice(*slices[i][c])] for i, g in used]
        if regularized:
            targets.append(model.regularization_loss())
            cotangents.append(regularizations.grad[c])
        torch.autograd.backward(targets, cotangents)
    with torch.no_grad():
        for variable, value in zip(_restorable_state(model), after_pass1):
            variable.assign(value)
        stats = _stats(model, outputs)
    gradients = [v.value.grad for v in model.trainable_variables]
    return loss.detach(), stats, outputs, gradients


# ---------------------------------------------------------------------------- JAX


def jax_gradients(model, trainable, non_trainable, x, scale_loss):
    """The cached step on JAX, a pure function of the state like the plain step.

    The whole chunks run in `jax.lax.scan` loops (a smaller last chunk after them):
    XLA reuses one chunk's buffers from iteration to iteration, so the peak memory
    holds one chunk's activations whatever the batch size (unrolled chunks in
    one XLA program do not share buffers on XLA:CPU). Convolutions differentiate
    with `kernel_gradient_as_matmuls`: autodiff's kernel gradient is 20-30x
    slower inside a loop body on XLA:CPU.

    Args:
        model: a built `ContrastiveModel` whose `gradient_cache` is set.
        trainable, non_trainable: the values of `model.trainable_variables` and
            `model.non_trainable_variables`.
        x: the input batch (static shapes).
        scale_loss: maps the loss to the (optimizer-scaled) loss to differentiate.

    Returns:
        `(loss, stats, outputs, gradients, non_trainable)`: the new non-trainable
        values are those after pass 1.
    """
    with kernel_gradient_as_matmuls():
        return _jax_gradients(model, trainable, non_trainable, x, scale_loss)


def _jax_gradients(model, trainable, non_trainable, x, scale_loss):
    import jax

    size = model.gradient_cache.chunk_size
    whole, rest = divmod(_static_batch_size(x), size)
    stacked = keras.tree.map_structure(
        lambda t: ops.reshape(t[: whole * size], (whole, size, *t.shape[1:])), x
    )
    last = _chunk(x, whole * size, rest) if rest else None

    def forward(trainable, non_trainable, chunk):
        mapping = list(zip(model.trainable_variables, trainable))
        mapping += list(zip(model.non_trainable_variables, non_trainable))

        def run():
            outputs = model.forward_pass(chunk, training=True)
            return outputs, _regularization(model)[0]

        result, scope = backend_steps.run_stateless(mapping, run)
        new = backend_steps.assigned_values(
            scope, model.non_trainable_variables, non_trainable
        )
        return result, new

    # 1. Graph-less forward pass, chunk by chunk (JAX differentiates only what
    # `vjp` / `grad` trace), the non-trainable state (seed generators, batch-norm
    # statistics) carried from chunk to chunk.
    def pass1(state, chunk):
        result, state = forward(trainable, state, chunk)
        return state, result

    state, (chunk_outputs, regularizations) = jax.lax.scan(
        pass1, non_trainable, stacked
    )
    # Stacked chunk outputs, rows in order: the concatenation of the chunks'.
    flat_chunks = [
        ops.reshape(t, (whole * t.shape[1], *t.shape[2:]))
        for t in keras.tree.flatten(chunk_outputs)
    ]
    chunk_rows = [int(t.shape[1]) for t in keras.tree.flatten(chunk_outputs)]
    if last is not None:
        (last_outputs, last_regularization), state = forward(
            trainable, state, _after(last, regularizations)
        )
        flat_last = keras.tree.flatten(last_outputs)
        flat_chunks = [ops.concatenate(p, axis=0) for p in zip(flat_chunks, flat_last)]
        regularizations = ops.concatenate([regularizations, last_regularization[None]])
    outputs = keras.tree.pack_sequence_as(chunk_outputs, flat_chunks)
    flat = flat_chunks
    floats = _float_indices(flat)

    def loss_fn(trainable, float_outputs, regularizations):
        mapping = list(zip(model.trainable_variables, trainable))
        mapping += list(zip(model.non_trainable_variables, state))
        full = keras.tree.pack_sequence_as(
            outputs, _replace(flat, floats, float_outputs)
        )
        loss, _ = backend_steps.run_stateless(
            mapping, lambda: _full_batch_loss(model, full, regularizations)
        )
        return scale_loss(loss), loss

    # 2. The full-batch loss and its gradients w.r.t. the cached outputs (and,
    # directly, the variables the loss reads).
    grad_fn = jax.value_and_grad(loss_fn, argnums=(0, 1, 2), has_aux=True)
    (_, loss), (gradients, output_grads, reg_grads) = grad_fn(
        trainable, [flat[i] for i in floats], regularizations
    )

    # 3. Chunk by chunk again, differentiably, from pass 1's initial state: the
    # forward passes carry the same state forward (seed generators replay the
    # same draws), and each chunk back-propagates its slice of the output
    # gradients.
    def backward(state, chunk, cotangents, reg_grad):
        def chunk_targets(trainable):
            (outputs, regularization), new = forward(trainable, state, chunk)
            flat_c = keras.tree.flatten(outputs)
            return ([flat_c[i] for i in floats], regularization), new

        _, vjp, state = jax.vjp(chunk_targets, trainable, has_aux=True)
        # Without regularisation losses the chunk's is a constant: zero gradient.
        (chunk_grads,) = vjp((cotangents, reg_grad))
        return state, chunk_grads

    def pass2(carry, inputs):
        gradients, state = carry
        state, chunk_grads = backward(state, *inputs)
        return ([g + c for g, c in zip(gradients, chunk_grads)], state), None

    whole_rows = [whole * chunk_rows[i] for i in floats]
    stacked_cotangents = [
        ops.reshape(g[:n], (whole, chunk_rows[i], *g.shape[1:]))
        for g, n, i in zip(output_grads, whole_rows, floats)
    ]
    stacked = _after(stacked, gradients)
    (gradients, replayed), _ = jax.lax.scan(
        pass2,
        (gradients, non_trainable),
        (stacked, stacked_cotangents, reg_grads[:whole]),
    )
    if last is not None:
        _, chunk_grads = backward(
            replayed,
            _after(last, gradients),
            [g[n:] for g, n in zip(output_grads, whole_rows)],
            reg_grads[whole],
        )
        gradients = [g + c for g, c in zip(gradients, chunk_grads)]

    stats, _ = backend_steps.run_stateless(
        list(zip(model.trainable_variables, trainable))
        + list(zip(model.non_trainable_variables, state)),
        lambda: _stats(model, outputs),
    )
    return loss, stats, outputs, gradients, state


def _after(chunk, previous):
    """`chunk`, usable only once `previous` is computed.

    Inside `jit` the chunks form one XLA program; without this barrier XLA may
    schedule several chunks' forward passes at once, and their activations would
    all be alive together, which is what gradient caching is there to avoid.
    """
    import jax

    chunk, _ = jax.lax.optimization_barrier((chunk, previous))
    return chunk
