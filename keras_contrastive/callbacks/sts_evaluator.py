"""`STSEvaluator`: the STS Spearman correlation of the text encoder, once per
epoch(s)."""

import keras

from keras_contrastive._validation import (
    check_positive_int,
    check_string,
    fail,
)
from keras_contrastive.evaluation.sts import check_sts_data, sts_spearman
from keras_contrastive.evaluation.texts import check_text_encoder


@keras.saving.register_keras_serializable(package="keras_contrastive")
class STSEvaluator(keras.callbacks.Callback):
    """Logs the STS Spearman correlation (x 100) of the encoder as `sts_spearman`.

    At the end of every `every`-th epoch the sentence pairs are embedded with the
    encoder, and the Spearman correlation between the pairs' cosine similarities
    and the gold scores, times 100, is written into the epoch's `logs` under
    `log_name` (the STS Benchmark protocol of Cer et al., 2017, used to select
    sentence encoders on STS-B dev by Reimers and Gurevych, 2019, and Gao et al.,
    2021, "SimCSE"; see `keras_contrastive.evaluation.sts_spearman`). Keras passes
    one shared `logs` dict to every callback of `fit` and appends `History` and the
    progress bar after the user's callbacks, so the value shows on the progress
    bar's epoch line and in `fit(...).history`. Callbacks that read it
    (EarlyStopping, ModelCheckpoint, CSVLogger, TensorBoard) must come *after*
    this one in `callbacks=[...]`. Skipped epochs (`every > 1`) have no entry;
    `evaluator.history` keeps `(epoch, value)` pairs.

    The encoder is, in this order: the `encoder` argument, `model.encoder` when
    the trained model has one, or the model itself. It may be an object with
    `encode(texts, batch_size=..., verbose=...)`, a Keras model taking strings, or
    a callable mapping a list of strings to `(batch, dim)`.

    Args:
        sentences1, sentences2: lists of str of equal length (at least 2 pairs),
            for example from `keras_contrastive.datasets.load_stsb(split="dev")`.
        scores: the gold similarity of each pair (not all equal).
        encoder: optional explicit text encoder.
        every: evaluate every this many epochs.
        batch_size: texts per encoder call.
        log_name: key written into the logs.
        verbose: when 1, also prints the value on its own line.

    Example:

    ```python
    from keras_contrastive.datasets import load_stsb

    dev = load_stsb("stsb/", split="dev")
    evaluator = STSEvaluator(*dev)
    history = model.fit(pairs, epochs=3, callbacks=[evaluator])
    history.history["sts_spearman"]
    ```
    """

    def __init__(
        self,
        sentences1,
        sentences2,
        scores,
        encoder=None,
        every=1,
        batch_size=32,
        log_name="sts_spearman",
        verbose=0,
    ):
        super().__init__()
        self.sentences1, self.sentences2, scores = check_sts_data(
            sentences1, sentences2, scores
        )
        self.scores = scores.astype("float32")
        check_text_encoder("encoder", encoder, optional=True)
        self.encoder = encoder
        self.every = check_positive_int("every", every)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.log_name = check_string("log_name", log_name)
        self.verbose = verbose
        self.history = []

    def _encoder(self):
        if self.encoder is not None:
            return self.encoder
        if self.model is None:
            return None
        return getattr(self.model, "encoder", None) or self.model

    def evaluate(self):
        """The current Spearman correlation x 100 (also usable outside `fit`)."""
        encoder = self._encoder()
        if encoder is None:
            fail(
                "encoder",
                "given when the evaluator is not attached to a model (pass "
                "`encoder=` or use the evaluator in `fit`)",
                None,
            )
        return sts_spearman(
            encoder,
            self.sentences1,
            self.sentences2,
            self.scores,
            batch_size=self.batch_size,
        )

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        value = self.evaluate()
        self.history.append((epoch, value))
        if logs is not None:
            logs[self.log_name] = value
        if self.verbose:
            print(f"Epoch {epoch + 1}: {self.log_name} = {value:.2f}")

    def get_config(self):
        # The evaluation pairs are part of what the evaluator is, so they are in
        # the config; an explicit `encoder` is not (it is set again by the caller).
        return {
            "sentences1": list(self.sentences1),
            "sentences2": list(self.sentences2),
            "scores": [float(score) for score in self.scores],
            "every": self.every,
            "batch_size": self.batch_size,
            "log_name": self.log_name,
            "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
