"""`ContrastiveModel`: the training step every method shares."""

import keras
from keras import ops

from keras_contrastive.losses import cosine_similarity_matrix
from keras_contrastive.losses._common import l2_normalize, to_float32
from keras_contrastive.models import backend_steps


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


def view_pair_accuracy(z_a, z_b):
    """Top-1 retrieval of row i of `z_b` among all rows of `z_b` for row i of `z_a`."""
    similarity = cosine_similarity_matrix(z_a, z_b)
    return top1_accuracy(similarity, ops.arange(ops.shape(z_a)[0]))


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
      data pipeline yields as `x`; labels, if any, are ignored) to a dict of tensors;
    - `compute_contrastive_loss(outputs)`: a float32 scalar loss from that dict;
    - optionally `compute_contrastive_stats(outputs)`: a dict with the monitoring
      values `contrastive_accuracy` (is the positive the most similar candidate) and
      `embedding_std` (collapse monitor); the default reads `outputs["z_a"]` and
      `outputs["z_b"]`;
    - optionally `post_step(outputs)`: state updates after each optimizer step
      (momentum copies, queues), given this step's `forward_pass` outputs without
      gradients. Assign only non-trainable variables there; on JAX that is what
      keeps them in the compiled step's state.

    The per-backend steps (`keras_contrastive.models.backend_steps`) do gradients,
    loss scaling for mixed precision, the optimizer, `post_step` and the metrics.
    `evaluate` logs the same three metrics (`loss`, `contrastive_accuracy`,
    `embedding_std`) with the networks in inference mode.

    `call(x)` (and so `predict`) returns the representation, `self.encoder(x)`.

    Subclasses must set `self.encoder` and build every sub-layer in `build`; the
    default `build` runs `forward_pass` once on symbolic inputs, which does that for
    layers that build on first call.
    """

    #: The smallest batch a method's loss is defined for (in-batch negatives).
    min_batch_size = 2

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

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="contrastive_accuracy")
        self.std_tracker = keras.metrics.Mean(name="embedding_std")

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
        return {
            "contrastive_accuracy": view_pair_accuracy(outputs["z_a"], outputs["z_b"]),
            "embedding_std": embedding_std(outputs["z_a"]),
        }

    def post_step(self, outputs):
        """State updates after the optimizer step; nothing by default."""

    # ------------------------------------------------------------ shared machinery

    def contrastive_step(self, x, training):
        """Forward pass: (loss with any regularisation losses, stats, outputs)."""
        outputs = self.forward_pass(x, training=training)
        loss = ops.cast(self.compute_contrastive_loss(outputs), "float32")
        regularization = self.losses
        if regularization:
            loss = loss + ops.cast(ops.sum(ops.stack(regularization)), "float32")
        stats = backend_steps.stop_gradient(self.compute_contrastive_stats(outputs))
        return loss, stats, backend_steps.stop_gradient(outputs)

    def update_contrastive_metrics(self, loss, stats):
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(stats["contrastive_accuracy"])
        self.std_tracker.update_state(stats["embedding_std"])

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker, self.std_tracker]

    def train_step(self, *args):
        return backend_steps.TRAIN_STEPS[keras.backend.backend()](self, *args)

    def test_step(self, *args):
        return backend_steps.TEST_STEPS[keras.backend.backend()](self, *args)

    def call(self, inputs, training=False):
        return self.encoder(inputs, training=training)

    def build_for(self, x):
        """Builds the model from an input batch, if it is not built yet."""
        if not self.built:
            self.build(keras.tree.map_structure(lambda t: tuple(t.shape), x))

    def build(self, input_shape):
        # Run the forward pass once on a batch of zeros so that every sub-layer
        # creates its variables (inside Keras' symbolic build this is only traced).
        # Inference mode keeps batch-norm statistics untouched.
        self.forward_pass(example_batch(input_shape), training=False)
        self.built = True

    # ----------------------------------------------------------------- validation

    def _check_batch_size(self, x, batch_size, argument):
        """Rejects batches too small for in-batch negatives before any work."""
        if batch_size is not None and batch_size < self.min_batch_size:
            raise ValueError(
                f"{type(self).__name__} needs at least {self.min_batch_size} examples "
                f"per batch (in-batch negatives); got batch_size={batch_size}."
            )
        first = next(iter(keras.tree.flatten(x)), None) if x is not None else None
        shape = getattr(first, "shape", None)
        if shape is not None and len(shape) and shape[0] is not None:
            if shape[0] < self.min_batch_size:
                raise ValueError(
                    f"{type(self).__name__} needs at least {self.min_batch_size} "
                    f"examples per batch; `{argument}` holds only {shape[0]}."
                )

    def fit(self, x=None, y=None, batch_size=None, **kwargs):
        self._check_batch_size(x, batch_size, "x")
        return super().fit(x, y, batch_size=batch_size, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        self._check_batch_size(x, batch_size, "x")
        return super().evaluate(x, y, batch_size=batch_size, **kwargs)
