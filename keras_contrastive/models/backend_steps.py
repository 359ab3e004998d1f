"""The training and evaluation steps of `ContrastiveModel`, one pair per backend.

Keras 3 has no single `train_step` that serves every backend, so the three variants
live here side by side and nowhere else. Each does the same five things, in the
backend's own idiom:

1. `loss, stats, outputs = model.contrastive_step(x, training)`: the method's
   forward pass, loss, monitoring statistics and (gradient-free) outputs;
2. gradients of the (optimizer-scaled) loss with respect to the trainable variables;
3. `optimizer.apply`;
4. `model.post_step(outputs)`: the method's state updates after the optimizer
   (momentum copies, queues), run with the *new* weights and this step's outputs,
   and only when the optimizer applied the step (a `LossScaleOptimizer` skips a
   float16 step whose gradients are not finite: its keys or features must not
   enter a queue or bank);
5. metric updates; the logs returned are the results of `model.metrics`.

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


def _step_applied(model, gradients):
    """Whether the optimizer applies this step: a scalar bool tensor under a
    `LossScaleOptimizer` (it skips steps with non-finite gradients), else None."""
    optimizer = model.optimizer
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return None
    skipped = ops.cast(ops.logical_not(optimizer.check_finite(gradients)), "float32")
    # One answer on every replica: a non-finite gradient on any replica makes the
    # all-reduced gradient non-finite, so the optimizer skips everywhere.
    return ops.equal(distribute.sum_over_replicas(skipped), 0.0)


def _post_step_if_applied(model, outputs, applied):
    """`model.post_step(outputs)`, its assignments undone if `applied` is False.

    For graph backends (TensorFlow): snapshot the non-trainable variables, run the
    update, then keep each new value only where the step was applied. Batch-norm
    statistics moved in the forward pass are kept, as Keras keeps them.
    """
    if applied is None:
        model.post_step(outputs)
        return
    variables = model.non_trainable_variables
    before = [ops.copy(v.value) for v in variables]
    model.post_step(outputs)
    for variable, old in zip(variables, before):
        variable.assign(ops.where(applied, variable.value, old))


# --------------------------------------------------------------------- TensorFlow


def tensorflow_train_step(model, data):
    import tensorflow as tf

    x = _unpack_x(model, data)
    _build(model, x)
    variables = model.trainable_variables
    if model.gradient_cache is not None:
        loss, stats, outputs, gradients = model.gradient_cache.tensorflow_gradients(
            model, x, lambda loss: scale_loss(model, loss)
        )
    else:
        with tf.GradientTape() as tape:
            loss, stats, outputs = model.contrastive_step(x, training=True)
            scaled_loss = scale_loss(model, loss)
        gradients = tape.gradient(scaled_loss, variables)
    applied = _step_applied(model, gradients)
    model.optimizer.apply(gradients, variables)
    _post_step_if_applied(model, outputs, applied)
    model.update_contrastive_metrics(loss, stats)
    return _metric_logs(model)


def tensorflow_test_step(model, data):
    x = _unpack_x(model, data)
    _build(model, x)
    loss, stats, _ = model.contrastive_step(x, training=False)
    model.update_contrastive_metrics(loss, stats)
    return _metric_logs(model)


# ------------------------------------------------------------------------ PyTorch


def torch_train_step(model, data):
    import torch

    x = _unpack_x(model, data)
    model.zero_grad()
    variables = model.trainable_variables
    if model.gradient_cache is not None:
        loss, stats, outputs, gradients = model.gradient_cache.torch_gradients(
            model, x, lambda loss: scale_loss(model, loss)
        )
    else:
        loss, stats, outputs = model.contrastive_step(x, training=True)
        scale_loss(model, loss).backward()
        gradients = [v.value.grad for v in variables]
    with torch.no_grad():
        applied = _step_applied(model, gradients)
        model.optimizer.apply(gradients, variables)
        if applied is None or bool(applied):  # eager: a plain branch
            model.post_step(outputs)
        model.update_contrastive_metrics(loss.detach(), stats)
    return _metric_logs(model)


def torch_test_step(model, data):
    import torch

    with torch.no_grad():
        loss, stats, _ = model.contrastive_step(_unpack_x(model, data), training=False)
        model.update_contrastive_metrics(loss, stats)
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


def _jax_update_metrics(model, metrics_values, loss, stats):
    mapping = list(zip(model.metrics_variables, metrics_values))

    def update():
        model.update_contrastive_metrics(loss, stats)
        return _metric_logs(model)

    logs, scope = run_stateless(mapping, update)
    return logs, assigned_values(scope, model.metrics_variables, metrics_values)


def jax_train_step(model, state, data):
    import jax

    trainable, non_trainable, optimizer_values, metrics_values = state
    x = _unpack_x(model, data)

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

        loss, stats, outputs, grads, non_trainable = model.gradient_cache.jax_gradients(
            model, trainable, non_trainable, x, scaled
        )
    else:
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (_, (loss, stats, outputs, non_trainable)), grads = grad_fn(
            trainable, non_trainable
        )
    applied = _step_applied(model, grads)
    trainable, optimizer_values = model.optimizer.stateless_apply(
        optimizer_values, grads, trainable
    )

    # Post-step updates see the freshly optimised weights and may assign any
    # non-trainable variable (momentum copy, queue, bank, step counter).
    mapping = list(zip(model.trainable_variables, trainable))
    mapping += list(zip(model.non_trainable_variables, non_trainable))
    _, scope = run_stateless(mapping, lambda: model.post_step(outputs))
    updated = assigned_values(scope, model.non_trainable_variables, non_trainable)
    if applied is not None:  # a skipped float16 step keeps the old state
        updated = [
            old if new is old else ops.where(applied, new, old)
            for new, old in zip(updated, non_trainable)
        ]
    non_trainable = updated

    logs, metrics_values = _jax_update_metrics(model, metrics_values, loss, stats)
    return logs, (trainable, non_trainable, optimizer_values, metrics_values)


def jax_test_step(model, state, data):
    trainable, non_trainable, metrics_values = state
    x = _unpack_x(model, data)
    mapping = list(zip(model.trainable_variables, trainable))
    mapping += list(zip(model.non_trainable_variables, non_trainable))
    (loss, stats, _), scope = run_stateless(
        mapping, lambda: model.contrastive_step(x, training=False)
    )
    non_trainable = assigned_values(scope, model.non_trainable_variables, non_trainable)
    logs, metrics_values = _jax_update_metrics(model, metrics_values, loss, stats)
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
    return {name: ops.stop_gradient(value) for name, value in tensors.items()}
