"""State for methods with a momentum network, a queue or random draws.

Small pieces used by MoCo, BYOL and the memory bank (and reusable by later
methods):

- `momentum_copy(layer)` / `MomentumPairs`: a copy of a network whose variables
  are *non-trainable* (so the optimizer never touches them, and on JAX their
  assignments inside the compiled step are kept), made equal to the source once
  (`MomentumState.sync_once`) and then updated by an exponential moving average
  theta_t <- m theta_t + (1 - m) theta_s.
- `MomentumState`: the momentum m itself, as model state. It holds a step counter
  and the schedule's parameters as non-trainable variables, so the momentum of
  step k is computed inside the compiled step from the counter (no per-batch
  callback, which on JAX would force a full state sync every batch) and training
  resumes at the right point of the schedule after `model.save` or
  `keras.callbacks.BackupAndRestore`.
- `FeatureQueue`: MoCo's FIFO queue of L2-normalised keys, a float32
  (size, dim) variable and an int32 write pointer.
- `check_saved_shape`: a clear error when a saved queue or bank does not fit.

Every update here is meant to run in `ContrastiveModel.post_step`, after the
optimizer step (or, for the one-time sync, at the start of the forward pass).
"""

import math

import keras
from keras import ops

from keras_contrastive.losses._common import l2_normalize as normalize_rows
from keras_contrastive.losses._common import to_float32

_PACKAGE = "keras_contrastive"

SCHEDULES = ("cosine", "linear", "constant")


def l2_normalize(x):
    """Row-wise x / ||x|| in float32 (zero rows stay zero): what queues and banks
    store, whatever the compute dtype."""
    return normalize_rows(to_float32(x))


def check_momentum(value, name="momentum"):
    """Returns `value` as a float in [0, 1], else raises a ValueError naming `name`."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be a number in [0, 1]; got {value!r}."
        ) from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"`{name}` must be in [0, 1]; got {value}.")
    return value


# ------------------------------------------------------------------ momentum copy


def momentum_copy(layer, name=None):
    """A fresh, unbuilt copy of `layer` with the same architecture (not weights).

    The copy is rebuilt from `layer`'s serialized config, so custom layers must
    implement `get_config` (and be registered). Build it by calling it once, then
    tie it to its source with `MomentumPairs`, which copies the weights and makes
    them non-trainable.

    Args:
        layer: a Keras layer or model.
        name: the copy's name (default: `"<name>_momentum"`).
    """
    if not isinstance(layer, keras.layers.Layer):
        raise TypeError(
            f"A momentum copy needs a Keras layer or model; got {type(layer).__name__}."
        )
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
            raise ValueError(
                f"The momentum copy of {source.name!r} does not have the same "
                "variables as the original (was it rebuilt with a different input "
                "shape?): got "
                f"{[tuple(v.shape) for v in copy_weights]}, expected "
                f"{[tuple(v.shape) for v in source_weights]}."
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


@keras.saving.register_keras_serializable(package=_PACKAGE)
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
        self.momentum = check_momentum(momentum)
        self.step = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="step"
        )
        self.total_steps = self.add_weight(
            shape=(),
            dtype="int32",
            initializer="zeros",
            trainable=False,
            name="total_steps",
        )
        constant = keras.initializers.Constant(self.momentum)
        self.start = self.add_weight(
            shape=(),
            dtype="float32",
            initializer=constant,
            trainable=False,
            name="start",
        )
        self.end = self.add_weight(
            shape=(), dtype="float32", initializer=constant, trainable=False, name="end"
        )
        self.cosine = self.add_weight(
            shape=(),
            dtype="float32",
            initializer="ones",
            trainable=False,
            name="cosine",
        )
        self.synced = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="synced"
        )
        self.built = True

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
        start = check_momentum(start, "start")
        end = check_momentum(end, "end")
        if schedule not in SCHEDULES:
            raise ValueError(
                f"`schedule` must be one of {SCHEDULES}; got {schedule!r}."
            )
        if not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(
                f"`total_steps` must be a positive int; got {total_steps!r}."
            )
        if schedule == "constant":
            end = start
        self.start.assign(start)
        self.end.assign(end)
        self.total_steps.assign(total_steps)
        self.cosine.assign(1.0 if schedule == "cosine" else 0.0)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}


# ------------------------------------------------------------------- FIFO queue


def check_saved_shape(layer, store, expected, message):
    """Raises ValueError(message(saved_shape)) if the first saved variable of
    `layer` (its queue or bank) does not have the `expected` shape.

    Keras may visit a layer twice while loading (once per path that reaches it)
    and forgets a failure when a later visit succeeds, so the error is
    remembered and raised again on a visit that finds nothing to load.
    """
    keys = list(store.keys())
    if "0" in keys:
        shape = tuple(store["0"].shape)
        layer._saved_shape_error = None
        if shape != tuple(expected):
            layer._saved_shape_error = message(shape)
    error = getattr(layer, "_saved_shape_error", None)
    if error:
        raise ValueError(error)


def unit_rows(shape, dtype=None):
    """Random unit vectors (a Keras initializer): the initial MoCo queue and memory
    bank, as in He et al.'s and Wu et al.'s code."""
    return l2_normalize(keras.random.normal(shape, dtype="float32"))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FeatureQueue(keras.layers.Layer):
    """A FIFO queue of `size` L2-normalised keys of dimension `dim` (MoCo).

    State (non-trainable, saved with the model): `keys`, float32 (size, dim),
    initialised with random unit vectors as in MoCo's code, and `pointer`, int32,
    the row the next key goes to. `enqueue(keys)` writes a batch of n keys at rows
    (pointer + 0..n-1) mod size, overwriting the oldest ones, and advances the
    pointer by n mod size: any batch size works, including one that does not divide
    `size`, a final partial batch, or n > size (only the last `size` keys are
    kept). After any sequence of batches the queue holds the last `size` keys seen.

    Loading weights saved with a different `size` or `dim` raises a ValueError.

    Args:
        size: number of keys kept.
        dim: key dimension.

    Example:

    >>> import numpy as np
    >>> queue = FeatureQueue(size=4, dim=2)
    >>> queue.enqueue(np.eye(2, dtype="float32"))
    >>> int(queue.pointer.numpy())
    2
    """

    def __init__(self, size, dim, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("size", size), ("dim", dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive int; got {value!r}.")
        self.size = size
        self.dim = dim
        self.keys = self.add_weight(
            shape=(size, dim),
            dtype="float32",
            initializer=unit_rows,
            trainable=False,
            name="keys",
        )
        self.pointer = self.add_weight(
            shape=(),
            dtype="int32",
            initializer="zeros",
            trainable=False,
            name="pointer",
        )
        self.built = True

    def enqueue(self, keys):
        """Writes `keys` (n, dim) over the oldest entries; normalises them first."""
        keys = l2_normalize(keys)
        if keys.shape[-1] is not None and keys.shape[-1] != self.dim:
            raise ValueError(
                f"Keys of dimension {keys.shape[-1]} cannot enter a queue of "
                f"dimension {self.dim}."
            )
        n = ops.shape(keys)[0]
        # Of a batch larger than the queue only the last `size` keys survive;
        # slicing keeps the scatter free of duplicate rows.
        kept = keys[-self.size :]
        n_kept = ops.shape(kept)[0]
        offset = ops.cast(n - n_kept, "int32")
        rows = ops.mod(
            self.pointer + offset + ops.arange(n_kept, dtype="int32"), self.size
        )
        self.keys.assign(ops.scatter_update(self.keys, rows[:, None], kept))
        self.pointer.assign(ops.mod(self.pointer + ops.cast(n, "int32"), self.size))

    def load_own_variables(self, store):
        check_saved_shape(
            self,
            store,
            (self.size, self.dim),
            lambda shape: (
                f"The saved queue {self.name!r} holds {shape[0]} keys of dimension "
                f"{shape[1]}, but this model's queue is (queue_size={self.size}, "
                f"dim={self.dim}). Rebuild the model with the `queue_size` and "
                "head `output_dim` it was saved with."
            ),
        )
        super().load_own_variables(store)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "dim": self.dim}
