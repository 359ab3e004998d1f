"""Contrastive Predictive Coding (Oord et al. 2018): predict future encodings."""

import keras
from keras import ops

from keras_contrastive import distribute
from keras_contrastive._validation import check_layer, check_positive_int, fail
from keras_contrastive.losses._common import (
    softmax_cross_entropy_rows,
    to_float32,
)
from keras_contrastive.models.contrastive_model import ContrastiveModel
from keras_contrastive.models.monitoring import embedding_std, top1_accuracy


def cpc_logits(z, predictions, prediction_steps):
    """CPC's scores for each prediction offset k = 1..K (Oord et al. 2018, eq. 3).

    Args:
        z: (B, T, d) encodings z_t of every step of every sequence.
        predictions: (B, T, K d): W_k c_t for each step t and offset k, the k-th
            block of d columns.
        prediction_steps: K.

    Returns:
        A list of K `(logits, targets, positive)`: `logits` (B (T - k), C) the
        scores z_j^T W_k c_t of the context of every step t < T - k against the
        C candidates (every step of every sequence of every replica's batch, in
        (sequence, step) order), `targets` the column of z_{t+k} of the same
        sequence, `positive` its score.
    """
    z = to_float32(z)
    predictions = to_float32(predictions)
    steps, dim = int(z.shape[1]), int(z.shape[2])
    batch = ops.shape(z)[0]
    flat = ops.reshape(z, (-1, dim))
    candidates = distribute.gather(flat)
    offset = distribute.replica_offset(ops.shape(flat)[0])
    sequence = ops.arange(batch, dtype="int32")[:, None] * steps
    out = []
    for k in range(1, prediction_steps + 1):
        p = ops.reshape(predictions[:, : steps - k, (k - 1) * dim : k * dim], (-1, dim))
        future = ops.reshape(z[:, k:, :], (-1, dim))
        targets = sequence + ops.arange(k, steps, dtype="int32")[None, :]
        targets = ops.reshape(targets, (-1,)) + offset
        logits = ops.matmul(p, ops.transpose(candidates))
        out.append((logits, targets, ops.sum(p * future, axis=-1)))
    return out


def cpc_loss(z, predictions, prediction_steps):
    """CPC's InfoNCE loss (Oord et al. 2018, eq. 4), averaged over offsets.

    For each offset k and each context c_t with t + k inside the sequence:

        L_{t,k} = -log [ exp(z_{t+k}^T W_k c_t) / sum_{z_j} exp(z_j^T W_k c_t) ]

    over the candidates z_j: the encodings of every step of every sequence of
    the batch (the true future z_{t+k} and, as negatives, other steps of the
    same sequence and the steps of other sequences). The loss is the mean over
    k of the mean over (sequence, t) of L_{t,k}: each offset weighs the same.

    Args: as `cpc_logits`.

    Returns:
        A float32 scalar.
    """
    per_offset = [
        ops.mean(softmax_cross_entropy_rows(logits, targets, positive))
        for logits, targets, positive in cpc_logits(z, predictions, prediction_steps)
    ]
    return ops.mean(ops.stack(per_offset))


@keras.saving.register_keras_serializable(package="keras_contrastive")
class CPC(ContrastiveModel):
    """Contrastive Predictive Coding (Oord et al. 2018, "Representation Learning
    with Contrastive Predictive Coding").

    A non-linear encoder g_enc maps each step of a sequence to an encoding z_t;
    an autoregressive model g_ar summarises z_1..z_t into a context c_t; a
    separate linear map W_k per offset k = 1..K scores the future encoding
    z_{t+k} by the log-bilinear f_k = exp(z_{t+k}^T W_k c_t) (the paper's eq.
    3). The InfoNCE loss (eq. 4) asks f_k to pick the true z_{t+k} among the
    encodings of every step of every sequence of the batch (other steps of the
    same sequence and steps of other sequences as negatives); minimising it
    maximises a lower bound on the mutual information I(x_{t+k}; c_t) >=
    log N - L_N (sec. 2.3), N the number of candidates. The loss is averaged over
    offsets and contexts (`cpc_loss`).

    After training, `model.encoder` gives the per-step encodings z (what `call`
    and `predict` return) and `model.context(x)` the contexts c; either, pooled
    over steps, is the representation of a sequence for a downstream task.

    Args:
        encoder: a Keras model or layer from the input batch `(batch, steps,
            ...)` to encodings `(batch, steps, dim)`: a strided 1-D convolution
            network over raw signals (the paper's audio encoder), or a window
            encoder wrapped in `keras.layers.TimeDistributed` over inputs
            `(batch, steps, window, channels)`.
        context_network: g_ar, a layer from `(batch, steps, dim)` to contexts
            `(batch, steps, context_dim)`, causal (c_t must not see z_{>t}).
            Default: `keras.layers.GRU(256, return_sequences=True)`, the paper's.
        prediction_steps: K, how many future steps each context predicts; the
            encoder must give more than K steps.
        **kwargs: `ContrastiveModel` arguments (`max_consecutive_skips`, `name`).

    `fit(x)` takes batches of sequences (labels are ignored). Logs `loss`,
    `contrastive_accuracy` (is the true future the top-scored candidate, mean
    over offsets) and `embedding_std` of the encodings (collapse monitor).

    Example:

    ```python
    import numpy as np
    import keras
    from keras_contrastive.models import CPC

    # 32 sequences of 12 windows of 16 steps of a 3-channel signal.
    x = np.random.normal(size=(32, 12, 16, 3)).astype("float32")
    window_encoder = keras.Sequential([
        keras.Input((16, 3)),
        keras.layers.Conv1D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling1D(),
    ])
    encoder = keras.Sequential([
        keras.Input((12, 16, 3)),
        keras.layers.TimeDistributed(window_encoder),
    ])
    model = CPC(encoder, keras.layers.GRU(16, return_sequences=True),
                prediction_steps=3)
    model.compile(optimizer="adam")
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    z = model.predict(x, verbose=0)  # (32, 12, 16) per-window encodings
    ```
    """

    nested_config = ("encoder", "context_network")
    config_attributes = ("prediction_steps",)

    def __init__(self, encoder, context_network=None, prediction_steps=4, **kwargs):
        super().__init__(**kwargs)
        self.encoder = check_layer("encoder", encoder)
        self.context_network = check_layer(
            "context_network", context_network, optional=True
        )
        self.prediction_steps = check_positive_int("prediction_steps", prediction_steps)
        self.predictor = None

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if self.context_network is None:
            self.context_network = keras.layers.GRU(256, return_sequences=True)
        z = self.encoder(keras.KerasTensor((2,) + input_shape[1:]))
        name = getattr(self.encoder, "name", "encoder")
        if len(z.shape) != 3:
            fail(
                "encoder",
                "a network returning (batch, steps, features) encodings of each "
                "step; wrap a window encoder in keras.layers.TimeDistributed",
                tuple(z.shape),
                received_as=f"{name}(x).shape",
            )
        steps = z.shape[1]
        if steps is None or steps <= self.prediction_steps:
            fail(
                "prediction_steps",
                "smaller than the number of encoded steps "
                f"({steps}: the sequences must be longer, with a known length)",
                self.prediction_steps,
            )
        c = self.context_network(z)
        if len(c.shape) != 3 or c.shape[1] != steps:
            fail(
                "context_network",
                f"a layer returning one context per step, (batch, {steps}, dim) "
                "(a recurrent layer needs return_sequences=True)",
                tuple(c.shape),
                received_as="context_network(z).shape",
            )
        self.predictor = keras.layers.Dense(
            self.prediction_steps * int(z.shape[-1]), use_bias=False, name="w_k"
        )
        self.predictor(c)
        self.built = True

    def _random_states(self):
        # The context network's seed generators (a GRU's dropout) are saved with
        # the model too, so that resumed runs draw the same masks.
        states = super()._random_states()
        network = self.context_network
        for variable in network.variables if network is not None else ():
            if variable.name == "seed_generator_state" and not any(
                variable is state for state in states
            ):
                states.append(variable)
        return states

    def context(self, x, training=False):
        """The contexts c_t = g_ar(z_1..z_t) of a batch: (batch, steps, dim)."""
        return self.context_network(
            self.encoder(x, training=training), training=training
        )

    def forward_pass(self, x, training=False):
        z = self.encoder(x, training=training)
        c = self.context_network(z, training=training)
        # One matmul for every W_k: the k-th block of columns is W_k c_t.
        return {"z": z, "predictions": self.predictor(c)}

    def compute_contrastive_loss(self, outputs):
        return cpc_loss(outputs["z"], outputs["predictions"], self.prediction_steps)

    def compute_contrastive_stats(self, outputs):
        z = outputs["z"]
        scores = cpc_logits(z, outputs["predictions"], self.prediction_steps)
        accuracy = [top1_accuracy(logits, targets) for logits, targets, _ in scores]
        flat = ops.reshape(z, (-1, int(z.shape[-1])))
        return {
            "contrastive_accuracy": ops.mean(ops.stack(accuracy)),
            "embedding_std": embedding_std(flat),
        }
