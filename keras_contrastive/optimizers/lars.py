"""LARS: layer-wise adaptive rate scaling (You et al. 2017), as SimCLR uses it."""

import re

import keras
from keras import ops

from keras_contrastive._validation import (
    check_bool,
    check_number,
    fail,
    is_number,
    legacy_type_errors,
)

_DEFAULT_EXCLUDE_NAMES = ("bias", "batch_norm", "batchnorm")


@keras.saving.register_keras_serializable(package="keras_contrastive")
class LARS(keras.optimizers.Optimizer):
    """Layer-wise Adaptive Rate Scaling (LARS), as used by SimCLR.

    SGD with momentum in which the step of every weight tensor is scaled by a
    *trust ratio* computed from that tensor alone. For a variable `w` with
    gradient `g`:

    ```python
    g = g + weight_decay * w                      # L2 decay folded in
    trust_ratio = eta * norm(w) / norm(g)         # 1 if norm(w)==0 or norm(g)==0
    scaled_lr = learning_rate * trust_ratio
    velocity = momentum * velocity + scaled_lr * g
    w = w - velocity                              # nesterov=False
    w = w - (momentum * velocity + scaled_lr * g) # nesterov=True
    ```

    Excluded variables (biases and batch-normalisation parameters: every
    variable of rank <= 1 when `exclude_1d=True`, and every variable whose
    path matches one of `exclude_names`) get neither weight decay nor the
    trust ratio: they follow plain SGD with momentum at `learning_rate`.
    This is the SimCLR reference implementation (`lars_optimizer.py`) with its
    "classic momentum" (the learning rate inside the velocity).

    The weight decay here is an L2 term added to the gradient *before* the
    trust ratio, not Keras' decoupled weight decay: `weight_decay` has the
    LARS meaning, and the base class' decoupled decay is never applied.
    Variables passed to `exclude_from_weight_decay()` are also excluded from
    the decay term (but keep the trust ratio).

    Args:
        learning_rate: A float >= 0, a
            `keras.optimizers.schedules.LearningRateSchedule` (for example
            `keras_contrastive.optimizers.WarmupCosineDecay`), or a callable
            that takes no arguments. Defaults to `0.1`.
        momentum: Float in `[0, 1)`. Defaults to `0.9`.
        weight_decay: Float >= 0, the L2 coefficient added to the gradient of
            non-excluded variables. `None` means 0. Defaults to `1e-6`
            (SimCLR's value).
        eta: Float > 0, the trust coefficient. Defaults to `0.001`.
        nesterov: Whether to use Nesterov momentum (needs `momentum > 0`).
            Defaults to `False`.
        exclude_names: Sequence of regular expressions (plain substrings work)
            searched in each variable's path (e.g. `"dense/bias"`); a match
            excludes the variable from weight decay and trust ratio. `None`
            means no name-based exclusion. Defaults to
            `("bias", "batch_norm", "batchnorm")`, which also covers Keras'
            default `batch_normalization` layer names.
        exclude_1d: Whether every variable of rank <= 1 (biases, batch-norm
            `gamma`/`beta`, layer-norm scales) is excluded. Defaults to `True`.
        **kwargs: The base optimizer's keyword arguments (`clipnorm`,
            `clipvalue`, `global_clipnorm`, `use_ema`, `ema_momentum`,
            `ema_overwrite_frequency`, `loss_scale_factor`,
            `gradient_accumulation_steps`, `name`).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_contrastive.optimizers import LARS, WarmupCosineDecay

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    schedule = WarmupCosineDecay(0.3, warmup_steps=10, decay_steps=90)
    model.compile(optimizer=LARS(schedule, momentum=0.9), loss="mse")
    model.fit(np.ones((32, 8)), np.zeros((32, 4)), epochs=1, verbose=0)
    ```

    References:
        - [You et al., 2017](https://arxiv.org/abs/1708.03888)
        - [Chen et al., 2020 (SimCLR)](https://arxiv.org/abs/2002.05709)
    """

    def __init__(
        self,
        learning_rate=0.1,
        momentum=0.9,
        weight_decay=1e-6,
        eta=0.001,
        nesterov=False,
        exclude_names=_DEFAULT_EXCLUDE_NAMES,
        exclude_1d=True,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        # A wrong type raises a TypeError that is also the ValueError LARS
        # raised for it before the package's checks were unified.
        with legacy_type_errors():
            if is_number(learning_rate):
                check_number("learning_rate", learning_rate, minimum=0.0)
            elif not callable(learning_rate):  # schedules are callables too
                fail(
                    "learning_rate",
                    "a number >= 0, a LearningRateSchedule or a callable",
                    learning_rate,
                    TypeError,
                )
            momentum = check_number(
                "momentum", momentum, minimum=0.0, maximum=1.0, max_open=True
            )
            weight_decay = check_number(
                "weight_decay",
                0.0 if weight_decay is None else weight_decay,
                minimum=0.0,
            )
            eta = check_number("eta", eta, minimum=0.0, min_open=True)
            nesterov = check_bool("nesterov", nesterov)
            if nesterov and momentum == 0.0:
                fail("nesterov", "False when `momentum` is 0", nesterov)
            exclude_1d = check_bool("exclude_1d", exclude_1d)
            exclude_names = check_patterns("exclude_names", exclude_names)

        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.momentum = momentum
        self.eta = eta
        self.nesterov = nesterov
        self.exclude_names = tuple(exclude_names)
        self.exclude_1d = exclude_1d
        self._exclude_patterns = tuple(re.compile(p) for p in exclude_names)

    def is_excluded(self, variable):
        """Whether `variable` skips weight decay and the trust ratio.

        True for variables of rank <= 1 when `exclude_1d` is set, and for
        variables whose path (or name) matches one of `exclude_names`.
        """
        if self.exclude_1d and len(variable.shape) <= 1:
            return True
        path = getattr(variable, "path", None) or variable.name
        return any(p.search(path) for p in self._exclude_patterns)

    def build(self, variables):
        """Creates one momentum buffer per variable (none when `momentum == 0`)."""
        if self.built:
            return
        super().build(variables)
        self.momentums = []
        if self.momentum != 0:
            self.momentums = self.add_optimizer_variables(variables, "momentum")

    def _apply_weight_decay(self, variables):
        # LARS folds its weight decay into the gradient inside `update_step`
        # (before the trust ratio); the base class' decoupled decay must not
        # also run.
        return

    def update_step(self, gradient, variable, learning_rate):
        """Applies one LARS update to `variable`."""
        dtype = variable.dtype
        learning_rate = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        excluded = self.is_excluded(variable)

        if (
            not excluded
            and (self.weight_decay or 0.0) > 0
            and self._use_weight_decay(variable)
        ):
            gradient = ops.add(
                gradient, ops.multiply(ops.cast(self.weight_decay, dtype), variable)
            )

        if excluded:
            scaled_lr = learning_rate
        else:
            w_norm = ops.sqrt(ops.sum(ops.square(variable)))
            g_norm = ops.sqrt(ops.sum(ops.square(gradient)))
            positive = ops.logical_and(ops.greater(w_norm, 0), ops.greater(g_norm, 0))
            # Keep the untaken branch finite (no 0/0) before selecting it away.
            safe_g_norm = ops.where(positive, g_norm, ops.ones_like(g_norm))
            ratio = ops.where(
                positive,
                ops.multiply(
                    ops.cast(self.eta, dtype), ops.divide(w_norm, safe_g_norm)
                ),
                ops.ones_like(w_norm),
            )
            scaled_lr = ops.multiply(learning_rate, ratio)

        step = ops.multiply(gradient, scaled_lr)
        if self.momentum == 0:
            self.assign_sub(variable, step)
            return

        m = self.momentums[self._get_variable_index(variable)]
        momentum = ops.cast(self.momentum, dtype)
        self.assign(m, ops.add(ops.multiply(m, momentum), step))
        if self.nesterov:
            self.assign_sub(variable, ops.add(ops.multiply(m, momentum), step))
        else:
            self.assign_sub(variable, m)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "eta": self.eta,
                "nesterov": self.nesterov,
                "exclude_names": list(self.exclude_names),
                "exclude_1d": self.exclude_1d,
            }
        )
        return config


def check_patterns(name, value):
    """Returns a list of regular expressions from None, one string or a sequence."""
    expectation = "a string or a sequence of strings (regular expressions), or None"
    if value is None:
        return []
    try:
        patterns = [value] if isinstance(value, str) else list(value)
    except TypeError:
        patterns = None
    if patterns is None or not all(isinstance(p, str) for p in patterns):
        fail(name, expectation, value, TypeError)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as error:
            detail = f"{pattern!r} is not a valid regular expression: {error}"
            fail(name, expectation, value, detail=detail)
    return patterns
