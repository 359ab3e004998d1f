"""`KNNMonitor`: the kNN accuracy of the encoder being trained, once per epoch(s)."""

import keras

from keras_contrastive._validation import (
    check_callable,
    check_positive_int,
    check_positive_number,
    check_string,
    fail,
)
from keras_contrastive.evaluation.arrays import check_labelled_data
from keras_contrastive.evaluation.embeddings import knn_evaluate


@keras.saving.register_keras_serializable(package="keras_contrastive")
class KNNMonitor(keras.callbacks.Callback):
    """Logs the weighted kNN accuracy of the encoder as `val_knn_accuracy`.

    At the end of every `every`-th epoch both labelled sets are embedded with the
    encoder in inference mode, each validation image is classified by the weighted
    cosine kNN of Wu et al. (2018) against the training images
    (`keras_contrastive.evaluation.knn_classify`), and the accuracy is written into
    the epoch's `logs` under `log_name`. Keras passes one shared `logs` dict to every
    callback of `fit`, and appends `History` and the progress bar after the user's
    callbacks, so the value shows in the epoch line of the progress bar and in
    `fit(...).history`. Callbacks listed *before* this one in `callbacks=[...]`
    (TensorBoard, CSVLogger, EarlyStopping, ModelCheckpoint) would not see it:
    put `KNNMonitor` first. Like Keras' `validation_freq`, epochs that are skipped
    (`every > 1`) have no entry; `monitor.history` keeps `(epoch, accuracy)` pairs.

    The encoder is, in this order: the `encoder` argument, `model.encoder` when the
    trained model has one (as every `keras_contrastive.models` model does), or the
    model itself. Integer images are cast to float32 with unchanged values.

    Args:
        train_data: `(images, labels)`, the labelled memory set.
        val_data: `(images, labels)`, the labelled queries.
        every: evaluate every this many epochs (the last epoch of a multiple).
        k: neighbours in the vote; clamped to the number of training images.
        temperature: `t` in the vote weight `exp(cos / t)`.
        batch_size: batch size of embedding and of the kNN queries.
        encoder: optional explicit encoder model.
        log_name: key written into the logs.
        verbose: when 1, also prints the accuracy on its own line.

    Example:

    ```python
    from keras_contrastive.datasets import load_cifar10_sample

    (x_train, y_train), (x_val, y_val) = load_cifar10_sample()
    monitor = KNNMonitor((x_train, y_train), (x_val, y_val), every=1, k=200)
    history = model.fit(x_train, epochs=10, callbacks=[monitor])
    history.history["val_knn_accuracy"]
    ```
    """

    def __init__(
        self,
        train_data,
        val_data,
        every=1,
        k=200,
        temperature=0.1,
        batch_size=256,
        encoder=None,
        log_name="val_knn_accuracy",
        verbose=0,
    ):
        super().__init__()
        self.train_data = check_labelled_data("train_data", train_data)
        self.val_data = check_labelled_data("val_data", val_data)
        if self.train_data[0].shape[1:] != self.val_data[0].shape[1:]:
            fail(
                "val_data[0].shape[1:]",
                "the per-sample shape of `train_data[0]` "
                f"({self.train_data[0].shape[1:]})",
                self.val_data[0].shape[1:],
            )
        self.every = check_positive_int("every", every)
        self.k = check_positive_int("k", k)
        self.temperature = check_positive_number("temperature", temperature)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.encoder = check_callable(
            "encoder", encoder, "a Keras model or callable", optional=True
        )
        self.log_name = check_string("log_name", log_name)
        self.verbose = verbose
        self.history = []

    def _encoder(self):
        if self.encoder is not None:
            return self.encoder
        return getattr(self.model, "encoder", None) or self.model

    def evaluate(self):
        """The current kNN accuracy of the encoder (also usable outside `fit`)."""
        encoder = self._encoder()
        if encoder is None:
            fail(
                "encoder",
                "given when the monitor is not attached to a model (pass "
                "`encoder=` or use the monitor in `fit`)",
                None,
            )
        return knn_evaluate(
            encoder,
            self.train_data,
            self.val_data,
            k=self.k,
            temperature=self.temperature,
            batch_size=self.batch_size,
        )

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        accuracy = self.evaluate()
        self.history.append((epoch, accuracy))
        if logs is not None:
            logs[self.log_name] = accuracy
        if self.verbose:
            print(f"Epoch {epoch + 1}: {self.log_name} = {accuracy:.4f}")

    def get_config(self):
        # The labelled sets are part of what the monitor is, so they are in the
        # config (as arrays; `serialize_keras_object` turns them into lists). An
        # explicit `encoder` is not: it is the model being trained, set again by
        # the caller.
        return {
            "train_data": self.train_data,
            "val_data": self.val_data,
            "every": self.every,
            "k": self.k,
            "temperature": self.temperature,
            "batch_size": self.batch_size,
            "log_name": self.log_name,
            "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("train_data", "val_data"):
            # After `serialize_keras_object` the arrays are nested configs.
            config[key] = tuple(
                keras.saving.deserialize_keras_object(part)
                if isinstance(part, dict)
                else part
                for part in config[key]
            )
        return cls(**config)
