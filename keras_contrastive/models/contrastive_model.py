"""`ContrastiveModel`: the training step every method shares."""

import contextlib

import keras
import numpy as np
from keras import ops

from keras_contrastive import distribute
from keras_contrastive._validation import check_bool, check_positive_int, fail
from keras_contrastive.models import backend_steps
from keras_contrastive.models.fit_data import full_batch_rows, peek_first_batch
from keras_contrastive.models.gradient_cache import as_gradient_cache
from keras_contrastive.models.jax_convolution import kernel_gradient_as_matmuls
from keras_contrastive.models.monitoring import view_pair_stats
from keras_contrastive.models.torch_batch_norm import fused_batch_normalization
from keras_contrastive.models.torch_convolution import channels_last_convolutions

# Saved seed-generator states are stored beside the model's own variables.
_RANDOM_STATE_KEY = "random_state_"


def example_batch(input_shape, batch_size=2):
    """Zeros shaped like `input_shape` (a shape or a nest of them), batch filled in."""

    def zeros(shape):
        shape = tuple(shape)
        return ops.zeros((batch_size if shape[0] is None else shape[0],) + shape[1:])

    return keras.tree.map_shape_structure(zeros, input_shape)


class ContrastiveModel(keras.Model):
    """Base class of every method: one training and evaluation step for all backends.

    `fit`, `evaluate` and `predict` work as for any Keras model, on NumPy arrays,
    `tf.data.Dataset`s and `keras.utils.PyDataset`s, on TensorFlow, JAX and PyTorch.
    A method (SimCLR, MoCo, BYOL, ...) only supplies:

    - `forward_pass(x, training)`: its forward pass from an input batch `x` (what the
      data pipeline yields as `x`; labels, if any, are ignored unless the method
      sets `uses_labels`, which makes `x` the pair `(x, y)`) to a dict of tensors;
    - `compute_contrastive_loss(outputs)`: a float32 scalar loss from that dict;
    - optionally `compute_contrastive_stats(outputs)`: a dict with the monitoring
      values `contrastive_accuracy` (is the positive the most similar candidate) and
      `embedding_std` (collapse monitor); the default reads `outputs["z_a"]` and
      `outputs["z_b"]`;
    - optionally `post_step(outputs)`: state updates after each optimizer step
      (momentum copies, queues), given this step's `forward_pass` outputs without
      gradients. Assign only non-trainable variables there; on JAX that is what
      keeps them in the compiled step's state. It does not run (its assignments
      are undone) when a `LossScaleOptimizer` skips the step (float16 overflow).

    and declares, as class attributes, `nested_config` (constructor arguments that
    are Keras objects) and `config_attributes` (plain constructor arguments, stored
    as attributes of the same name): `get_config` / `from_config` follow from them.

    The per-backend steps (`keras_contrastive.models.backend_steps`) do gradients,
    loss scaling for mixed precision, the optimizer, `post_step` and the metrics.
    `evaluate` logs the same three metrics (`loss`, `contrastive_accuracy`,
    `embedding_std`) with the networks in inference mode.

    `call(x)` (and so `predict`) returns the representation, `self.encoder(x)`.

    Bad batches: a training step whose loss or gradients are not finite (a NaN
    pixel, an exploding loss) applies nothing: no optimizer update, no
    `post_step`, and the state the forward pass moved (batch-norm statistics) is
    put back, so nothing non-finite reaches the weights, a queue, a bank or a
    momentum copy. It logs a NaN loss (so `keras.callbacks.TerminateOnNaN` works)
    and counts in the logged `skipped_steps`. A batch smaller than
    `min_batch_size` is not a step: nothing is applied and the logged means do
    not change.

    The partial last batch: when `fit` batches arrays itself, a training batch
    smaller than `batch_size` (the epoch's last, after shuffling) is not a step
    either, unless `fit(..., drop_last=False)` or the method's `drop_last`
    attribute says otherwise; this is PyTorch's `DataLoader(drop_last=True)`,
    which SimCLR, MoCo and BYOL implementations (lightly, solo-learn) use. A
    final batch of 16 images after 39 of 256 would otherwise take a full-size
    Adam step with 30 negatives per anchor instead of 510 and batch-norm
    statistics of 16 images: at 20 epochs of 10,000 CIFAR-10 images that step
    costs SimCLR about a point of kNN accuracy (docs/methods.md). Evaluation
    and validation use every batch. Datasets and generators do their own
    batching (`tf.data.Dataset.batch(..., drop_remainder=True)`).

    Many devices: under JAX `keras.distribution.DataParallel` the step sees the
    global batch; under a `tf.distribute` strategy (create and compile the model in
    its `scope()`) each replica runs the step on its slice, and
    `compute_contrastive_loss` returns that replica's mean over its own anchors
    computed against every replica's candidates (the library's losses gather them
    through `keras_contrastive.distribute`); the step divides by the replica count
    and the optimizer sums the replicas' gradients. `post_step` must make the same
    update on every replica (MoCo enqueues every replica's keys). A Keras loss
    *object* already returns its share of the global mean under `tf.distribute`:
    multiply it by `distribute.num_replicas()` (or use the functional forms). The
    PyTorch backend trains on one device only (`fit` raises otherwise). See
    docs/distributed.md and docs/adding_a_method.md.

    Args:
        gradient_cache: `None` (default), a `GradientCache` or a positive int chunk
            size: train each batch in chunks of that many rows with the full-batch
            loss and gradients (Gao et al. 2021), at the activation memory of one
            chunk. Only for methods whose `supports_gradient_cache` is True (their
            `forward_pass` is row-wise); others raise a `ValueError`.
        max_consecutive_skips: `fit` raises a `FloatingPointError` naming the
            epoch and batch after this many consecutive steps skipped for a
            non-finite loss or gradient (see "Bad batches" below).
        **kwargs: standard `keras.Model` arguments (`name`, ...).

    Subclasses set `self.encoder` and build every sub-layer in `build`; the default
    `build` runs `forward_pass` once on a batch of zeros, which does that for
    layers that build on first call. Image methods start from
    `ImageContrastiveModel`, which owns the views, the default heads and the build.
    """

    #: The smallest batch a method's loss is defined for (in-batch negatives).
    min_batch_size = 2
    #: Whether `fit` on arrays skips a final training batch smaller than
    #: `batch_size` (PyTorch's `drop_last`); `fit(..., drop_last=...)` overrides.
    drop_last = True
    #: Constructor arguments that are Keras objects (networks, augmenter), stored
    #: as attributes of the same name: saved nested by `get_config`, rebuilt by
    #: `from_config`.
    nested_config = ()
    #: Plain constructor arguments (numbers, strings), stored as attributes of the
    #: same name and saved as they are by `get_config`.
    config_attributes = ()
    #: The entries of `compute_contrastive_stats`'s dict, each logged as its mean
    #: over the epoch's steps (besides `loss` and `skipped_steps`).
    logged_stats = ("contrastive_accuracy", "embedding_std")
    #: Whether `forward_pass` receives the labels: `(x, y)` instead of `x` (labels
    #: of supervised objectives, e.g. Sentence-BERT's); the model is built from `x`.
    uses_labels = False
    #: Whether `forward_pass` is row-wise (outputs of row chunks concatenate to the
    #: full batch's), which gradient caching needs.
    supports_gradient_cache = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # On the torch backend every Keras layer is a torch.nn.Module, whose
        # `forward` is what `__call__` runs: a method named `forward` would hijack
        # `model(x)` and `predict`.
        if "forward" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__} defines `forward`; ContrastiveModel methods implement "
                "`forward_pass(x, training)` instead (`forward` is torch.nn.Module's "
                "and would replace `call` on the torch backend)."
            )

    def __init__(self, gradient_cache=None, max_consecutive_skips=5, **kwargs):
        super().__init__(**kwargs)
        gradient_cache = as_gradient_cache(gradient_cache)
        if gradient_cache is not None and not self.supports_gradient_cache:
            fail(
                "gradient_cache",
                f"None for {type(self).__name__}, whose forward pass is not "
                "row-wise (it keeps state across the batch)",
                gradient_cache,
            )
        self.gradient_cache = gradient_cache
        #: Set by each `fit`: training batches smaller than this are not steps.
        self.full_batch_rows = None
        self.max_consecutive_skips = check_positive_int(
            "max_consecutive_skips", max_consecutive_skips
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.stat_trackers = [keras.metrics.Mean(name=n) for n in self.logged_stats]
        self.skipped_tracker = keras.metrics.Sum(name="skipped_steps")

    # ------------------------------------------------------------ method interface

    def forward_pass(self, x, training=False):
        raise NotImplementedError(
            f"{type(self).__name__} must implement `forward_pass(x, training)`."
        )

    def compute_contrastive_loss(self, outputs):
        raise NotImplementedError(
            f"{type(self).__name__} must implement `compute_contrastive_loss(outputs)`."
        )

    def compute_contrastive_stats(self, outputs):
        return view_pair_stats(outputs["z_a"], outputs["z_b"])

    def post_step(self, outputs):
        """State updates after the optimizer step; nothing by default."""

    def check_fit_data(self, x):
        """Checks the `x` of `fit` / `evaluate` before anything is built or
        compiled (an error inside the first compiled step would leave a JAX model
        without its variables); nothing by default."""

    def training_callbacks(self):
        """Callbacks the method adds to every `fit`: the stop after
        `max_consecutive_skips` non-finite steps in a row."""
        return [NonFiniteStepGuard(self.max_consecutive_skips)]

    # ------------------------------------------------------------ shared machinery

    def contrastive_step(self, x, training):
        """Forward pass: (loss with any regularisation losses, stats, outputs)."""
        outputs = self.forward_pass(x, training=training)
        loss = ops.cast(self.compute_contrastive_loss(outputs), "float32")
        regularization = self.regularization_loss()
        if regularization is not None:
            loss = loss + regularization
        stats = backend_steps.stop_gradient(self.compute_contrastive_stats(outputs))
        return loss, stats, backend_steps.stop_gradient(outputs)

    def regularization_loss(self):
        """The sum of `self.losses` as a float32 scalar, or None when there are none."""
        regularization = self.losses
        if not regularization:
            return None
        return ops.cast(ops.sum(ops.stack(regularization)), "float32")

    def update_contrastive_metrics(self, loss, stats, verdict=None):
        """Adds a step's loss and stats to the epoch's means.

        `verdict` (from the training step's non-finite guard) says whether the
        step counts (its batch is large enough), whether it was applied, and
        whether it was skipped for a non-finite loss or gradient: a skipped step
        logs a NaN loss (so `keras.callbacks.TerminateOnNaN` stops the run) and
        no stats; a batch too small to count leaves every mean unchanged.
        """
        if verdict is None:
            counted = applied = ops.ones((), "float32")
            skipped = ops.zeros((), "float32")
        else:
            counted, applied, skipped = (
                ops.cast(verdict[k], "float32") for k in ("counted", "update", "bad")
            )
        loss = ops.where(applied > 0, loss, float("nan"))
        self.loss_tracker.update_state(ops.where(counted > 0, loss, 0.0), counted)
        for tracker in self.stat_trackers:
            value = ops.cast(stats[tracker.name], "float32")
            tracker.update_state(ops.where(applied > 0, value, 0.0), applied)
        self.skipped_tracker.update_state(skipped)

    @property
    def metrics(self):
        return [self.loss_tracker, *self.stat_trackers, self.skipped_tracker]

    def train_step(self, *args):
        with (
            channels_last_convolutions(),
            fused_batch_normalization(),
            kernel_gradient_as_matmuls(),
        ):
            return backend_steps.TRAIN_STEPS[keras.backend.backend()](self, *args)

    def test_step(self, *args):
        with channels_last_convolutions(), fused_batch_normalization():
            return backend_steps.TEST_STEPS[keras.backend.backend()](self, *args)

    @property
    def jit_compile(self):
        # The TensorFlow gradient-cache loops need dynamic shapes, which XLA lacks.
        # (A property, not a `compile` override: Keras only restores the compile
        # state of saved models whose `compile` is its own.)
        if self.gradient_cache is not None and keras.backend.backend() == "tensorflow":
            return False
        return super().jit_compile

    @jit_compile.setter
    def jit_compile(self, value):
        keras.Model.jit_compile.fset(self, value)

    def get_config(self):
        config = super().get_config()
        for key in self.nested_config:
            config[key] = keras.saving.serialize_keras_object(getattr(self, key))
        for key in self.config_attributes:
            config[key] = getattr(self, key)
        if self.max_consecutive_skips != 5:
            config["max_consecutive_skips"] = self.max_consecutive_skips
        if self.gradient_cache is not None:
            config["gradient_cache"] = keras.saving.serialize_keras_object(
                self.gradient_cache
            )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in cls.nested_config:
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def track_in_order(self, *names):
        """Re-tracks the named sub-layers last, in this order.

        Keras orders a model's variables, and with them the optimizer's slot
        variables that a `.keras` file stores by position, by when each
        sub-layer was first assigned to the model. A network given to the
        constructor is assigned there, a default one only in `build`; and
        `from_config` gives every network to the constructor. Without a fixed
        order, a model trained with one optional network given and an earlier
        one left to its default would reload with the optimizer's moments in
        another order: an error, or, where the shapes agree, moments silently
        applied to the wrong weights. A `build` that creates default networks
        calls this at its end with its optional networks, in `nested_config`
        order (a no-op for defaults, which `build` creates in that order).
        """
        for name in names:
            layer = getattr(self, name, None)
            if isinstance(layer, keras.layers.Layer):
                self._tracker.untrack(layer)
                self._tracker.track(layer)

    def call(self, inputs, training=False):
        return self.encoder(inputs, training=training)

    def build_for(self, x):
        """Builds the model from an input batch, if it is not built yet."""
        if not self.built:
            with self._variable_scope():
                self.build(keras.tree.map_structure(lambda t: tuple(t.shape), x))

    def _variable_scope(self):
        # Variables made under a tf.distribute strategy must be created in its scope
        # (mirrored); `fit` builds eagerly, outside the user's `with scope:` block.
        if keras.backend.backend() != "tensorflow":
            return contextlib.nullcontext()
        import tensorflow as tf

        if tf.distribute.has_strategy():  # already in a scope or a replica's step
            return contextlib.nullcontext()
        return self.distribute_strategy.scope()

    def build(self, input_shape):
        # Run the forward pass once on a batch of zeros so that every sub-layer
        # creates its variables (inside Keras' symbolic build this is only traced).
        # Inference mode keeps batch-norm statistics untouched.
        self.forward_pass(example_batch(input_shape), training=False)
        self.built = True

    # ------------------------------------------------------------------ fit

    def _check_batch_size(self, x, batch_size):
        """Rejects batches too small for in-batch negatives before any work."""
        minimum = self.min_batch_size
        why = f"for {type(self).__name__} (in-batch negatives)"
        if batch_size is not None and batch_size < minimum:
            fail("batch_size", f"at least {minimum} {why}", batch_size)
        first = next(iter(keras.tree.flatten(x)), None) if x is not None else None
        shape = getattr(first, "shape", None)
        if shape is not None and len(shape) and shape[0] is not None:
            if shape[0] < minimum:
                fail(
                    "x",
                    f"batches of at least {minimum} examples {why}",
                    tuple(shape),
                    received_as="x.shape",
                )

    def _prepare(self, x, batch_size):
        """Checks before any work, then builds from the data when it can be peeked.

        Building eagerly (rather than in the first traced step, where TensorFlow
        would) lets `keras.callbacks.BackupAndRestore` restore weights and random
        state at the start of training, and keeps one zero-batch forward pass out of
        every traced step.
        """
        distribute.check_supported()
        self.check_fit_data(x)
        self._check_batch_size(x, batch_size)
        if not self.built:
            sample = peek_first_batch(x)
            if sample is not None:
                self.build_for(sample)

    def fit(
        self, x=None, y=None, batch_size=None, callbacks=None, drop_last=None, **kwargs
    ):
        """`keras.Model.fit`, plus `drop_last`.

        Args:
            drop_last: when `x` is arrays (batched here), whether a training
                batch smaller than `batch_size` (the last of each epoch, after
                shuffling) is left out, as PyTorch's `DataLoader(drop_last=True)`
                does. None (default): the method's `drop_last` attribute, True
                but for Sentence-BERT and SimCSE. Datasets and generators batch
                themselves (`tf.data`: `drop_remainder=True`).
            x, y, batch_size, callbacks, **kwargs: as `keras.Model.fit`.
        """
        _check_backups(callbacks)
        self._prepare(x, batch_size)
        full = full_batch_rows(x, batch_size, kwargs.get("validation_split", 0.0))
        self._set_full_batch_rows(full if self.resolve_drop_last(drop_last) else None)
        callbacks = list(callbacks or []) + self.training_callbacks()
        return super().fit(x, y, batch_size=batch_size, callbacks=callbacks, **kwargs)

    def resolve_drop_last(self, drop_last):
        """`fit`'s `drop_last` argument as a bool (None: the method's default)."""
        if drop_last is None:
            return bool(self.drop_last)
        return check_bool("drop_last", drop_last)

    def _set_full_batch_rows(self, rows):
        """The training step's full batch (smaller ones are not steps), or None.

        A Python int the step is traced with: a change drops the compiled step.
        """
        if rows != self.full_batch_rows:
            self.train_function = None
        self.full_batch_rows = rows

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        self._prepare(x, batch_size)
        return super().evaluate(x, y, batch_size=batch_size, **kwargs)

    # ------------------------------------------------------------------ saving

    def _random_states(self):
        """Seed-generator states of the model and of its augmenter, if any."""
        states = []
        generator = getattr(self, "seed_generator", None)
        if generator is not None:
            states.append(generator.state)
        augmenter = getattr(self, "augmenter", None)
        if isinstance(augmenter, keras.layers.Layer):
            for variable in augmenter.variables:
                if variable.name == "seed_generator_state" and not any(
                    variable is s for s in states
                ):
                    states.append(variable)
        return states

    def save_own_variables(self, store):
        # Keras does not save seed generators: without them the views and negative
        # draws after `load_model` or `BackupAndRestore` would differ from those of
        # the uninterrupted run.
        super().save_own_variables(store)
        for i, state in enumerate(self._random_states()):
            store[f"{_RANDOM_STATE_KEY}{i}"] = state

    def load_own_variables(self, store):
        keys = list(store.keys())
        random_keys = [k for k in keys if k.startswith(_RANDOM_STATE_KEY)]
        own = {k: store[k] for k in keys if not k.startswith(_RANDOM_STATE_KEY)}
        super().load_own_variables(own)
        states = self._random_states()
        if len(random_keys) == len(states):
            for i, state in enumerate(states):
                state.assign(np.asarray(store[f"{_RANDOM_STATE_KEY}{i}"]))


def _check_backups(callbacks):
    """Refuses batch-level `BackupAndRestore`: Keras 3 restarts an interrupted
    epoch from its first batch with the weights of the last batch-level backup,
    so steps would be trained twice (and queues, banks and momentum copies would
    not match the uninterrupted run)."""
    for callback in callbacks or []:
        if isinstance(callback, keras.callbacks.BackupAndRestore):
            if callback.save_freq != "epoch":
                fail(
                    "save_freq",
                    "'epoch' in keras.callbacks.BackupAndRestore for a "
                    "ContrastiveModel (an epoch interrupted after a batch-level "
                    "backup would restart from its first batch and train some "
                    "steps twice; epoch backups resume exactly)",
                    callback.save_freq,
                )


class NonFiniteStepGuard(keras.callbacks.Callback):
    """Stops `fit` after `limit` consecutive steps skipped as non-finite.

    Added to every `fit` of a `ContrastiveModel`; reads the logged
    `skipped_steps` (the epoch's count of skipped steps) after each batch.
    """

    def __init__(self, limit):
        super().__init__()
        self.limit = limit
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.previous, self.consecutive = epoch, 0.0, 0

    def on_train_batch_end(self, batch, logs=None):
        skipped = float((logs or {}).get("skipped_steps", 0.0))
        self.consecutive = self.consecutive + 1 if skipped > self.previous else 0
        self.previous = skipped
        if self.consecutive >= self.limit:
            raise FloatingPointError(
                f"{self.consecutive} consecutive training steps had a non-finite "
                f"loss or gradient (the last in epoch {self.epoch + 1}, batch "
                f"{batch + 1}); they were skipped and the model is unchanged by "
                "them. Check the data for NaN or infinite values and the learning "
                "rate; `max_consecutive_skips` sets this limit."
            )
