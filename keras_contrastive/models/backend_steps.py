"""The training and evaluation steps of `ContrastiveModel`, one pair per backend.

Keras 3 has no single `train_step` that serves every backend, so the three variants
live here side by side and nowhere else. Each does the same five things, in the
backend's own idiom:

1. `loss, stats, outputs = model.contrastive_step(x, training)`: the method's
   forward pass, loss, monitoring statistics and (gradient-free) outputs;
2. gradients of the (optimizer-scaled) loss with respect to the trainable variables;
3. `optimizer.apply`;
4. `model.post_step(outputs)`: the method's state updates after the optimizer
   (momentum copies, queues), run with the *new* weights and this step's outputs;
5. metric updates; the logs returned are the results of `model.metrics`.

The non-finite guard (`step_verdict`) decides what of 3-4 is kept: a step whose
loss or gradients are not finite keeps no update, no `post_step` and no state of
its forward pass (batch-norm statistics), logs a NaN loss and counts as skipped;
a batch below `model.min_batch_size` is not a step at all, and neither is a
training batch below `model.full_batch_rows` (the partial last batch that `fit`
drops, set there).

On JAX the step is a pure function of the state tuple that `jax.jit` compiles, so
every part runs inside a `StatelessScope` mapping variables to the values being
traced, and assignments made there (batch-norm statistics, seed generators,
post-step state) are collected and returned as the new state.

Public helpers, also used by gradient caching (`gradient_cache`, which the steps
call through the model's `GradientCache` object, so this module imports nothing
of it): `run_stateless`, `assigned_values`, `scale_loss`, `stop_gradient`.
"""

import keras
from keras import ops

from keras_contrastive import distribute

_StatelessScope = keras.StatelessScope


def _unpack_x(model, data):
    """What `forward_pass` receives: `x`, or `(x, y)` for a method that sets
    `uses_labels` (labels ignored otherwise)."""
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    return (x, y) if model.uses_labels else x


def _build(model, inputs):
    # Keras defers building to the first trace of the step on TensorFlow.
    model.build_for(inputs[0] if model.uses_labels else inputs)


def _metric_logs(model):
    return {m.name: m.result() for m in model.metrics}


def scale_loss(model, loss):
    """What the step differentiates: the loss over the replica count (the optimizer
    sums the replicas' gradients), times the float16 loss scale if any."""
    loss = distribute.scale_loss(loss)
    return model.optimizer.scale_loss(loss) if model.optimizer is not None else loss


def _rows(x):
    return ops.shape(keras.tree.flatten(x)[0])[0]


def _all_finite(tensors):
    finite = [ops.all(ops.isfinite(t)) for t in tensors if t is not None]
    return ops.all(ops.stack(finite)) if finite else ops.ones((), "bool")


def _everywhere(flag):
    """True when `flag` holds on every replica (one answer for all of them)."""
    missing = ops.cast(ops.logical_not(flag), "float32")
    return ops.equal(distribute.sum_over_replicas(missing), 0.0)


def step_verdict(model, x, loss, gradients):
    """What the step may keep, as scalar bool tensors in a dict:

    - `counted`: the batch has at least `model.min_batch_size` rows on every
      replica and, when `fit` drops the partial last batch, `model.full_batch_rows`
      rows over all replicas;
    - `bad`: a counted step whose loss (or, without a `LossScaleOptimizer`, a
      gradient) is not finite: bad data or divergence, skipped and logged;
    - `update`: keep the optimizer's update (counted and not bad);
    - `state`: keep `post_step`'s and the forward pass's state updates (also not
      when a `LossScaleOptimizer` skips a float16 overflow, which it then handles
      itself by lowering its scale).

    Every replica gets the same answers.
    """
    optimizer = model.optimizer
    loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    finite = ops.all(ops.isfinite(loss))
    if loss_scaled:
        state_ok = _everywhere(optimizer.check_finite(gradients))
        return _verdict(model, x, finite, state_ok, training=True)
    finite = ops.logical_and(finite, _all_finite(gradients))
    return _verdict(model, x, finite, training=True)


def evaluation_verdict(model, x, loss):
    """`step_verdict` of an evaluation step (no gradients, nothing applied)."""
    return _verdict(model, x, ops.all(ops.isfinite(loss)))


def _verdict(model, x, finite, state_ok=None, training=False):
    """The verdict dict from this replica's `finite` flag; `state_ok`, agreed
    across replicas already, further restricts `state`."""
    rows = _rows(x)
    counted = _everywhere(rows >= model.min_batch_size)
    full = _full_batch_rows(model, training)
    if full is not None:
        all_rows = distribute.sum_over_replicas(ops.cast(rows, "float32"))
        counted = ops.logical_and(counted, all_rows >= full)
    finite = _everywhere(finite)
    update = ops.logical_and(counted, finite)
    state = update if state_ok is None else ops.logical_and(update, state_ok)
    bad = ops.logical_and(counted, ops.logical_not(finite))
    return {"counted": counted, "bad": bad, "update": update, "state": state}


def _full_batch_rows(model, training):
    """The rows a training batch needs to count (None: any size counts)."""
    return getattr(model, "full_batch_rows", None) if training else None


def _too_small(model, x, training=False):
    """True when the batch's static size is below the method's minimum (or, in
    training on one replica, below the full batch `fit` drops smaller ones of):
    such a step is skipped before anything is traced."""
    rows = keras.tree.flatten(x)[0].shape[0]
    if rows is None:
        return False
    full = _full_batch_rows(model, training)
    if full is not None and distribute.num_replicas() == 1 and rows < full:
        return True
    return rows < model.min_batch_size


def guarded_state(model):
    """The variables a skipped step puts back: every non-trainable variable but
    the metrics and the seed generators (random draws move on)."""
    metrics = {id(v) for v in model.metrics_variables}
    return [
        v
        for v in model.non_trainable_variables
        if id(v) not in metrics and v.name != "seed_generator_state"
    ]


def _snapshot(variables):
    return [ops.copy(v.value) for v in variables]


def _keep_where(flag, variables, before):
    for variable, old in zip(variables, before):
        variable.assign(ops.where(flag, variable.value, old))


# --------------------------------------------------------------------- TensorFlow


def tensorflow_train_step(model, data):
    import tensorflow as tf

    x = _unpack_x(model, data)
    _build(model, x)
    if _too_small(model, x, training=True):  # eager, or a static batch size
        return _metric_logs(model)
    variables = model.trainable_variables
    # The batch size is dynamic in TF's traced step, so a skip is decided in-graph.
    state = guarded_state(model)
    state_before = _snapshot(state)  # the forward pass moves batch-norm statistics
    if model.gradient_cache is not None:
        loss, stats, outputs, gradients = model.gradient_cache.tensorflow_gradients(
            model, x, lambda loss: scale_loss(model, loss)
        )
    else:
        with tf.GradientTape() as tape:
            loss, stats, outputs = model.contrastive_step(x, training=True)
            scaled_loss = scale_loss(model, loss)
        gradients = tape.gradient(scaled_loss, variables)
    verdict = step_verdict(model, x, loss, gradients)
    if tf.distribute.has_strategy():
        # Under tf.distribute `optimizer.apply` synchronises the replicas, which a
        # tf.cond cannot hold: apply everywhere, then put back what is not kept.
        optimizer_state = variables + list(model.optimizer.variables)
        optimizer_before = _snapshot(optimizer_state)
        model.optimizer.apply(gradients, variables)
        model.post_step(outputs)
        _keep_where(verdict["update"], optimizer_state, optimizer_before)
        _keep_where(verdict["state"], state, state_before)
    else:
        # One device: branch, so a kept step pays for no copy of the weights and
        # slots (the optimizer must exist before the branch: no variable can be
        # created inside a tf.cond).
        if not model.optimizer.built:
            model.optimizer.build(variables)
        _branch(
            verdict["update"],
            lambda: model.optimizer.apply(gradients, variables),
            lambda: None,
        )
        _branch(
            verdict["state"],
            lambda: model.post_step(outputs),
            lambda: _assign_all(state, state_before),
        )
    model.update_contrastive_metrics(loss, stats, verdict)
    return _metric_logs(model)


def _branch(flag, keep, otherwise):
    """`tf.cond(flag, keep, otherwise)` for branches run for their effects only."""
    import tensorflow as tf

    def run(branch):
        branch()  # tf.cond needs both branches to return the same (nothing)

    tf.cond(flag, lambda: run(keep), lambda: run(otherwise))


def _assign_all(variables, values):
    for variable, value in zip(variables, values):
        variable.assign(value)


def tensorflow_test_step(model, data):
    x = _unpack_x(model, data)
    _build(model, x)
    if _too_small(model, x):
        return _metric_logs(model)
    loss, stats, _ = model.contrastive_step(x, training=False)
    model.update_contrastive_metrics(loss, stats, evaluation_verdict(model, x, loss))
    return _metric_logs(model)


# ------------------------------------------------------------------------ PyTorch


def torch_train_step(model, data):
    import torch

    x = _unpack_x(model, data)
    if _too_small(model, x, training=True):
        return _metric_logs(model)
    model.zero_grad()
    variables = model.trainable_variables
    state = guarded_state(model)
    with torch.no_grad():
        state_before = _snapshot(state)
    if model.gradient_cache is not None:
        loss, stats, outputs, gradients = model.gradient_cache.torch_gradients(
            model, x, lambda loss: scale_loss(model, loss)
        )
    else:
        loss, stats, outputs = model.contrastive_step(x, training=True)
        scale_loss(model, loss).backward()
        gradients = [v.value.grad for v in variables]
    with torch.no_grad():
        verdict = step_verdict(model, x, loss, gradients)
        # Eager: plain branches.
        if bool(verdict["update"]):
            model.optimizer.apply(gradients, variables)
        if bool(verdict["state"]):
            model.post_step(outputs)
        else:
            _assign_all(state, state_before)
        model.update_contrastive_metrics(loss.detach(), stats, verdict)
    return _metric_logs(model)


def torch_test_step(model, data):
    import torch

    x = _unpack_x(model, data)
    if _too_small(model, x):
        return _metric_logs(model)
    with torch.no_grad():
        loss, stats, _ = model.contrastive_step(x, training=False)
        verdict = evaluation_verdict(model, x, loss)
        model.update_contrastive_metrics(loss, stats, verdict)
    return _metric_logs(model)


# ---------------------------------------------------------------------------- JAX


def run_stateless(mapping, fn):
    """Runs `fn()` with variables read from `mapping`; returns (result, scope)."""
    with _StatelessScope(state_mapping=mapping) as scope:
        result = fn()
    return result, scope


def assigned_values(scope, variables, old_values):
    """The values assigned inside `scope`, falling back to the old ones."""
    new = []
    for variable, old in zip(variables, old_values):
        value = scope.get_current_value(variable)
        new.append(old if value is None else value)
    return new


def _jax_metric_logs(model, metrics_values):
    mapping = list(zip(model.metrics_variables, metrics_values))
    logs, _ = run_stateless(mapping, lambda: _metric_logs(model))
    return logs


def _jax_update_metrics(model, metrics_values, loss, stats, verdict=None):
    mapping = list(zip(model.metrics_variables, metrics_values))

    def update():
        model.update_contrastive_metrics(loss, stats, verdict)
        return _metric_logs(model)

    logs, scope = run_stateless(mapping, update)
    return logs, assigned_values(scope, model.metrics_variables, metrics_values)


def jax_train_step(model, state, data):
    import jax

    trainable, non_trainable, optimizer_values, metrics_values = state
    x = _unpack_x(model, data)
    if _too_small(model, x, training=True):
        return _jax_metric_logs(model, metrics_values), state

    def loss_fn(trainable, non_trainable):
        mapping = list(zip(model.trainable_variables, trainable))
        mapping += list(zip(model.non_trainable_variables, non_trainable))
        (loss, stats, outputs), scope = run_stateless(
            mapping, lambda: model.contrastive_step(x, training=True)
        )
        non_trainable = assigned_values(
            scope, model.non_trainable_variables, non_trainable
        )
        scaled_loss = loss
        if model.optimizer is not None:
            optimizer_mapping = list(zip(model.optimizer.variables, optimizer_values))
            scaled_loss, _ = run_stateless(
                optimizer_mapping, lambda: model.optimizer.scale_loss(loss)
            )
        return scaled_loss, (loss, stats, outputs, non_trainable)

    if model.gradient_cache is not None:

        def scaled(loss):
            mapping = list(zip(model.optimizer.variables, optimizer_values))
            scaled_loss, _ = run_stateless(mapping, lambda: scale_loss(model, loss))
            return scaled_loss

        loss, stats, outputs, grads, forward_state = model.gradient_cache.jax_gradients(
            model, trainable, non_trainable, x, scaled
        )
    else:
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (_, (loss, stats, outputs, forward_state)), grads = grad_fn(
            trainable, non_trainable
        )
    verdict = step_verdict(model, x, loss, grads)
    new_trainable, new_optimizer_values = model.optimizer.stateless_apply(
        optimizer_values, grads, trainable
    )
    trainable = _select(verdict["update"], new_trainable, trainable)
    optimizer_values = _select(
        verdict["update"], new_optimizer_values, optimizer_values
    )

    # Post-step updates see the freshly optimised weights and may assign any
    # non-trainable variable (momentum copy, queue, bank, step counter).
    mapping = list(zip(model.trainable_variables, trainable))
    mapping += list(zip(model.non_trainable_variables, forward_state))
    _, scope = run_stateless(mapping, lambda: model.post_step(outputs))
    updated = assigned_values(scope, model.non_trainable_variables, forward_state)
    # A skipped step keeps the state from before its forward pass, but for the
    # seed generators (random draws move on) and the metrics.
    kept = {id(v) for v in guarded_state(model)}
    non_trainable = [
        _select(verdict["state"], [new], [old])[0] if id(v) in kept else new
        for v, new, old in zip(model.non_trainable_variables, updated, non_trainable)
    ]

    logs, metrics_values = _jax_update_metrics(
        model, metrics_values, loss, stats, verdict
    )
    return logs, (trainable, non_trainable, optimizer_values, metrics_values)


def _select(flag, new, old):
    return [o if n is o else ops.where(flag, n, o) for n, o in zip(new, old)]


def jax_test_step(model, state, data):
    trainable, non_trainable, metrics_values = state
    x = _unpack_x(model, data)
    if _too_small(model, x):
        return _jax_metric_logs(model, metrics_values), state
    mapping = list(zip(model.trainable_variables, trainable))
    mapping += list(zip(model.non_trainable_variables, non_trainable))
    (loss, stats, _), scope = run_stateless(
        mapping, lambda: model.contrastive_step(x, training=False)
    )
    non_trainable = assigned_values(scope, model.non_trainable_variables, non_trainable)
    verdict = evaluation_verdict(model, x, loss)
    logs, metrics_values = _jax_update_metrics(
        model, metrics_values, loss, stats, verdict
    )
    return logs, (trainable, non_trainable, metrics_values)


TRAIN_STEPS = {
    "tensorflow": tensorflow_train_step,
    "jax": jax_train_step,
    "torch": torch_train_step,
}
TEST_STEPS = {
    "tensorflow": tensorflow_test_step,
    "jax": jax_test_step,
    "torch": torch_test_step,
}


def stop_gradient(tensors):
    """Statistics and post-step inputs never carry gradients."""
    return keras.tree.map_structure(ops.stop_gradient, tensors)
