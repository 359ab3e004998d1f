"""Momentum networks: a copy of a network updated by an exponential moving average.

MoCo's key encoder (He et al. 2020, eq. 2) and BYOL's target network (Grill et al.
2020, eq. 1) are momentum copies theta_t <- m theta_t + (1 - m) theta_s of online
networks. `MomentumModel` owns that machinery, so a method only declares which of
its networks have copies (`momentum_networks`):

- `momentum_copy(layer)` / `MomentumPairs`: a copy of a network whose variables
  are *non-trainable* (so the optimizer never touches them, and on JAX their
  assignments inside the compiled step are kept), made equal to the source once
  (`MomentumState.sync_once`) and then updated by the moving average;
- `MomentumState`: the momentum m itself, as model state. It holds a step counter
  and the schedule's parameters as non-trainable variables, so the momentum of
  step k is computed inside the compiled step from the counter (no per-batch
  callback, which on JAX would force a full state sync every batch) and training
  resumes at the right point of the schedule after `model.save` or
  `keras.callbacks.BackupAndRestore`.
"""

import math

import keras
from keras import ops

from keras_contrastive._validation import (
    check_layer,
    check_one_of,
    check_positive_int,
    check_probability,
    fail,
)
from keras_contrastive.models.contrastive_model import ContrastiveModel

SCHEDULES = ("cosine", "linear", "constant")


# ------------------------------------------------------------------ momentum copy


def momentum_copy(layer, name=None):
    """A copy of `layer` with the same architecture (not the same weights).

    The copy is rebuilt from `layer`'s serialized config, and built from its build
    config (the input shape it was built for), so custom layers must implement
    `get_config` (and be registered). Tie it to its source with `MomentumPairs`,
    which copies the weights and makes them non-trainable.

    Args:
        layer: a Keras layer or model.
        name: the copy's name (default: `"<name>_momentum"`).
    """
    check_layer("layer", layer)
    config = keras.saving.serialize_keras_object(layer)
    if isinstance(config, dict) and isinstance(config.get("config"), dict):
        config["config"]["name"] = name or f"{layer.name}_momentum"
    try:
        copy = keras.saving.deserialize_keras_object(config)
    except Exception as error:  # anything from the user's own from_config
        raise ValueError(
            f"Could not copy {layer.name!r} ({type(layer).__name__}) for the "
            "momentum network: it must be re-creatable from its config (implement "
            "`get_config` and register the class with "
            "`keras.saving.register_keras_serializable`). Original error: "
            f"{error}"
        ) from error
    build_config = layer.get_build_config()
    if not copy.built and build_config:
        copy.build_from_config(build_config)
    return copy


class MomentumPairs:
    """The (copy variable, source variable) pairs of a momentum network.

    Created once both networks are built: it checks that the copy matches its
    source variable for variable and marks every copy variable non-trainable. The
    copy layer itself stays `trainable`, so its batch norms use batch statistics
    in training mode (as the key encoder of MoCo and the target of BYOL do) while
    the optimizer never sees its weights.

    `sync` makes the copy equal to the source (every variable, batch-norm
    statistics included); `update` applies the EMA to the weights that are
    trainable in the source. Between updates the copy's batch-norm moving
    averages follow its own forward passes.

    Nothing is assigned here at construction: on TensorFlow models are built
    while the training step is being traced, and an assignment made then would
    run again at every step. `MomentumState.sync_once` does the first `sync`
    inside the step instead.

    Args:
        source: the online (query) network, built.
        copy: its momentum copy (from `momentum_copy`), built.
    """

    def __init__(self, source, copy):
        source_weights, copy_weights = source.weights, copy.weights
        if len(source_weights) != len(copy_weights) or any(
            tuple(s.shape) != tuple(c.shape)
            for s, c in zip(source_weights, copy_weights)
        ):
            fail(
                "copy",
                f"a network with the variables of {source.name!r}, "
                f"{[tuple(v.shape) for v in source_weights]} (was it rebuilt with "
                "a different input shape?)",
                [tuple(v.shape) for v in copy_weights],
                received_as="copy variables",
            )
        self.all_pairs = list(zip(copy_weights, source_weights))
        self.pairs = [(c, s) for c, s in self.all_pairs if s.trainable]
        for copy_var in copy_weights:
            copy_var.trainable = False

    def sync(self, condition):
        """copy <- source for every variable where the scalar `condition` holds."""
        for copy_var, source_var in self.all_pairs:
            value = ops.cast(source_var.value, copy_var.dtype)
            copy_var.assign(ops.where(condition, value, copy_var.value))

    def update(self, momentum):
        """theta_copy <- m * theta_copy + (1 - m) * theta_source, for every pair."""
        momentum = ops.cast(momentum, "float32")
        for copy_var, source_var in self.pairs:
            m = ops.cast(momentum, copy_var.dtype)
            copy_var.assign(
                m * copy_var.value
                + (1.0 - m) * ops.cast(source_var.value, copy_var.dtype)
            )


# ------------------------------------------------------------- momentum schedule


def scheduled_momentum(step, total_steps, start, end, cosine):
    """The momentum of step `step` (0-based), as a float32 tensor.

    With progress p = min(step / total_steps, 1):

    - cosine (BYOL, Grill et al. 2020): m = end - (end - start) (cos(pi p) + 1) / 2,
      which for end = 1 is BYOL's 1 - (1 - m0)(cos(pi k / K) + 1) / 2;
    - linear: m = start + (end - start) p.

    `total_steps` <= 0 means no schedule: m = start.
    """
    total = ops.cast(total_steps, "float32")
    progress = ops.where(
        total > 0,
        ops.minimum(ops.cast(step, "float32") / ops.maximum(total, 1.0), 1.0),
        0.0,
    )
    cosine_weight = 1.0 - (ops.cos(math.pi * progress) + 1.0) / 2.0
    weight = cosine * cosine_weight + (1.0 - cosine) * progress
    return start + (end - start) * weight


@keras.saving.register_keras_serializable(package="keras_contrastive")
class MomentumState(keras.layers.Layer):
    """The EMA momentum of a momentum network and its position in a schedule.

    Non-trainable variables (saved with the model):

    - `step` (int32): momentum updates done so far, k;
    - `total_steps` (int32): the schedule's length K (0: constant momentum);
    - `start`, `end` (float32): the schedule's end points;
    - `cosine` (float32): 1 for the cosine schedule, 0 for the linear one;
    - `synced` (int32): 1 once the momentum copies were made equal to their
      sources (`sync_once`), so a resumed run never resets them.

    Without a schedule the momentum is the constant `momentum`. A
    `keras_contrastive.callbacks.MomentumSchedule` sets the schedule through
    `set_schedule` when training begins; the momentum of each step is then
    computed inside the compiled step from `step` (see `scheduled_momentum`).

    Args:
        momentum: the constant momentum used until a schedule is set.
    """

    def __init__(self, momentum=0.999, **kwargs):
        super().__init__(**kwargs)
        self.momentum = check_probability("momentum", momentum)
        constant = keras.initializers.Constant(self.momentum)
        self.step = self._scalar("step", "int32", "zeros")
        self.total_steps = self._scalar("total_steps", "int32", "zeros")
        self.start = self._scalar("start", "float32", constant)
        self.end = self._scalar("end", "float32", constant)
        self.cosine = self._scalar("cosine", "float32", "ones")
        self.synced = self._scalar("synced", "int32", "zeros")
        self.built = True

    def _scalar(self, name, dtype, initializer):
        return self.add_weight(
            shape=(), dtype=dtype, initializer=initializer, trainable=False, name=name
        )

    def sync_once(self, momentum_pairs):
        """Copies each source into its momentum copy the first time it runs.

        Call it at the start of every forward pass: the copies then start equal
        to the online networks as they are when training starts (after any
        weights the user loaded into them), and never again.
        """
        needed = ops.equal(self.synced, 0)
        for pairs in momentum_pairs:
            pairs.sync(needed)
        self.synced.assign(ops.ones((), "int32"))

    def current(self):
        """The momentum for the next update, a float32 scalar tensor."""
        return scheduled_momentum(
            self.step, self.total_steps, self.start, self.end, self.cosine
        )

    def advance(self):
        self.step.assign(self.step + 1)

    def set_schedule(self, start, end, total_steps, schedule="cosine"):
        """Sets the schedule; keeps the step counter (so a resumed run continues).

        Args:
            start: momentum at step 0.
            end: momentum at step `total_steps` and after.
            total_steps: the schedule's length K, in optimizer steps (> 0).
            schedule: "cosine", "linear" or "constant" (always `start`).
        """
        start = check_probability("start", start)
        end = check_probability("end", end)
        check_one_of("schedule", schedule, SCHEDULES)
        total_steps = check_positive_int("total_steps", total_steps)
        if schedule == "constant":
            end = start
        self.start.assign(start)
        self.end.assign(end)
        self.total_steps.assign(total_steps)
        self.cosine.assign(1.0 if schedule == "cosine" else 0.0)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}


# ----------------------------------------------------------------- the base class


class MomentumModel(ContrastiveModel):
    """Base of methods with momentum copies of their networks (MoCo, BYOL).

    A method lists its copies in `momentum_networks`, a dict from the copy's
    attribute name to its source network's (MoCo: `{"key_encoder": "encoder",
    "key_head": "projection_head"}`); this base

    - makes each copy once the method's networks are built (after
      `super().build`), non-trainable and tied to its source;
    - makes every copy equal to its source at the first step (`sync_once`, at the
      start of each forward pass, so weights loaded into the online networks
      before training reach the copies, and a resumed run never resets them);
    - after each optimizer step updates every copy by the moving average with the
      momentum of `momentum_state` (constant, or scheduled by
      `keras_contrastive.callbacks.MomentumSchedule` through
      `set_momentum_schedule`), in `post_step`: a method that overrides
      `post_step` calls `super().post_step(outputs)`.

    Put it first among the bases: `class MoCo(MomentumModel,
    ImageContrastiveModel)`.

    Args:
        momentum: m of the update, in [0, 1] (the schedule's start when one is set).
        **kwargs: the other bases' arguments.
    """

    #: Copy attribute name -> source attribute name, in build order.
    momentum_networks = {}
    config_attributes = ("momentum",)

    def __init__(self, *args, momentum=0.999, **kwargs):
        super().__init__(*args, **kwargs)
        self.momentum_state = MomentumState(momentum, name="momentum_state")
        for copy_name in self.momentum_networks:
            setattr(self, copy_name, None)
        self._momentum_pairs = []

    @property
    def momentum(self):
        """The momentum given at construction (a schedule may override it)."""
        return self.momentum_state.momentum

    def build(self, input_shape):
        super().build(input_shape)
        for copy_name, source_name in self.momentum_networks.items():
            source = getattr(self, source_name)
            copy = momentum_copy(source)
            setattr(self, copy_name, copy)
            self._momentum_pairs.append(MomentumPairs(source, copy))

    def contrastive_step(self, x, training):
        self.momentum_state.sync_once(self._momentum_pairs)
        return super().contrastive_step(x, training)

    def post_step(self, outputs):
        momentum = self.momentum_state.current()
        for pairs in self._momentum_pairs:
            pairs.update(momentum)
        self.momentum_state.advance()

    def set_momentum_schedule(self, start, end, total_steps, schedule="cosine"):
        """Anneals the momentum from `start` to `end` over `total_steps` optimizer
        steps (see `MomentumState.set_schedule`)."""
        self.momentum_state.set_schedule(start, end, total_steps, schedule)
