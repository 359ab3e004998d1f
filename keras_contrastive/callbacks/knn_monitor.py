"""`KNNMonitor`: the kNN accuracy of the encoder being trained, once per epoch(s)."""

import keras

from keras_contrastive._validation import (
    check_callable,
    check_int_tuple,
    check_positive_int,
    check_positive_number,
    check_string,
    fail,
    shown_as,
    summarize,
)
from keras_contrastive.evaluation._data import is_reiterable, is_stream
from keras_contrastive.evaluation.arrays import check_labelled_data
from keras_contrastive.evaluation.embeddings import LABELLED_EXPECTATION, knn_evaluate


def top_k_log_name(log_name, k):
    """The log key of the top-`k` accuracy: `log_name` for k = 1, else `top{k}_`
    inserted before a final `accuracy` (`val_knn_top5_accuracy`) or `_top{k}`
    appended (`knn` -> `knn_top5`)."""
    if k == 1:
        return log_name
    if log_name.endswith("accuracy"):
        return f"{log_name[: -len('accuracy')]}top{k}_accuracy"
    return f"{log_name}_top{k}"


def _check_data(name, data):
    """`(images, labels)` NumPy arrays, or a re-iterable dataset as it is."""
    if is_stream(data):
        if not is_reiterable(data):
            fail(
                name,
                "a dataset that can be read again at every evaluation (a "
                "tf.data.Dataset, a PyDataset, a list of batches, a DataLoader)",
                shown_as(f"a one-shot {type(data).__name__}"),
                TypeError,
            )
        return data
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        fail(name, LABELLED_EXPECTATION, summarize(data))
    return check_labelled_data(name, data)


@keras.saving.register_keras_serializable(package="keras_contrastive")
class KNNMonitor(keras.callbacks.Callback):
    """Logs the weighted kNN top-1 and top-5 accuracy of the encoder.

    At the end of every `every`-th epoch both labelled sets are embedded with the
    encoder in inference mode, each validation image is classified by the weighted
    cosine kNN of Wu et al. (2018) against the training images
    (`keras_contrastive.evaluation.knn_classify`), and the accuracies are written
    into the epoch's `logs`: top-1 under `log_name` (`val_knn_accuracy`), top-k
    for each other k of `top_k` under the same name with `top{k}_` before
    `accuracy` (`val_knn_top5_accuracy`: the true class among the 5 classes with
    the largest votes, as in Wu et al.'s tables). Keras passes one shared `logs`
    dict to every callback of `fit`, and appends `History` and the progress bar
    after the user's callbacks, so the values show in the epoch line of the
    progress bar and in `fit(...).history`. Callbacks listed *before* this one in
    `callbacks=[...]` (TensorBoard, CSVLogger, EarlyStopping, ModelCheckpoint)
    would not see them:
    put `KNNMonitor` first. Like Keras' `validation_freq`, epochs that are skipped
    (`every > 1`) have no entry; `monitor.history` keeps `(epoch, accuracy)` pairs
    (the accuracy of the first k of `top_k`).

    Either set may be a dataset instead of arrays: a `tf.data.Dataset` (on every
    backend), a `keras.utils.PyDataset` or another re-iterable of
    `(images, labels)` batches (not a one-shot generator: it is read again at
    every evaluation). It is embedded one batch at a time, so a large labelled
    set need not fit in memory; only its embeddings do.

    The encoder is, in this order: the `encoder` argument, `model.encoder` when the
    trained model has one (as every `keras_contrastive.models` model does), or the
    model itself. Integer images are cast to float32 with unchanged values.

    Args:
        train_data: `(images, labels)`, the labelled memory set, or a dataset
            of `(images, labels)` batches.
        val_data: `(images, labels)` or a dataset: the labelled queries.
        every: evaluate every this many epochs (the last epoch of a multiple).
        k: neighbours in the vote; clamped to the number of training images.
        temperature: `t` in the vote weight `exp(cos / t)`.
        batch_size: batch size of embedding and of the kNN queries.
        encoder: optional explicit encoder model.
        log_name: key of the top-1 accuracy in the logs.
        verbose: when 1, also prints the accuracies on their own line.
        top_k: the top-k accuracies to log, an int or a tuple of ints.

    Example:

    ```python
    from keras_contrastive.datasets import load_cifar10_sample

    (x_train, y_train), (x_val, y_val) = load_cifar10_sample()
    monitor = KNNMonitor((x_train, y_train), (x_val, y_val), every=1, k=200)
    history = model.fit(x_train, epochs=10, callbacks=[monitor])
    history.history["val_knn_accuracy"], history.history["val_knn_top5_accuracy"]
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
        top_k=(1, 5),
    ):
        super().__init__()
        self.train_data = _check_data("train_data", train_data)
        self.val_data = _check_data("val_data", val_data)
        if (
            not is_stream(self.train_data)
            and not is_stream(self.val_data)
            and self.train_data[0].shape[1:] != self.val_data[0].shape[1:]
        ):
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
        self.top_k = check_int_tuple("top_k", top_k, minimum=1)
        if len(set(self.top_k)) != len(self.top_k):
            fail("top_k", "distinct ints", top_k)
        self.history = []

    def log_names(self):
        """`{k: key in the logs}` for each k of `top_k`."""
        return {k: top_k_log_name(self.log_name, k) for k in self.top_k}

    def _encoder(self):
        if self.encoder is not None:
            return self.encoder
        return getattr(self.model, "encoder", None) or self.model

    def evaluate(self, return_dict=False):
        """The current kNN accuracy of the encoder (also usable outside `fit`).

        Returns the accuracy of the first k of `top_k` (top-1 by default) as a
        float, or with `return_dict=True` a dict `{log name: accuracy}` of every
        k of `top_k`.
        """
        encoder = self._encoder()
        if encoder is None:
            fail(
                "encoder",
                "given when the monitor is not attached to a model (pass "
                "`encoder=` or use the monitor in `fit`)",
                None,
            )
        accuracies = knn_evaluate(
            encoder,
            self.train_data,
            self.val_data,
            k=self.k,
            temperature=self.temperature,
            batch_size=self.batch_size,
            top_k=self.top_k,
        )
        if return_dict:
            names = self.log_names()
            return {names[k]: accuracies[k] for k in self.top_k}
        return accuracies[self.top_k[0]]

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        results = self.evaluate(return_dict=True)
        self.history.append(
            (epoch, results[top_k_log_name(self.log_name, self.top_k[0])])
        )
        if logs is not None:
            logs.update(results)
        if self.verbose:
            shown = ", ".join(
                f"{name} = {value:.4f}" for name, value in results.items()
            )
            print(f"Epoch {epoch + 1}: {shown}")

    def get_config(self):
        # The labelled sets are part of what the monitor is, so they are in the
        # config (as arrays; `serialize_keras_object` turns them into lists). An
        # explicit `encoder` is not: it is the model being trained, set again by
        # the caller. Datasets have no config.
        for name in ("train_data", "val_data"):
            if is_stream(getattr(self, name)):
                raise NotImplementedError(
                    f"KNNMonitor.get_config(): `{name}` is a dataset, which has no "
                    "config; a monitor of datasets is rebuilt from the datasets."
                )
        return {
            "train_data": self.train_data,
            "val_data": self.val_data,
            "every": self.every,
            "k": self.k,
            "temperature": self.temperature,
            "batch_size": self.batch_size,
            "log_name": self.log_name,
            "verbose": self.verbose,
            "top_k": self.top_k,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "top_k" in config:  # a list after JSON
            config["top_k"] = tuple(config["top_k"])
        for key in ("train_data", "val_data"):
            # After `serialize_keras_object` the arrays are nested configs.
            config[key] = tuple(
                keras.saving.deserialize_keras_object(part)
                if isinstance(part, dict)
                else part
                for part in config[key]
            )
        return cls(**config)
