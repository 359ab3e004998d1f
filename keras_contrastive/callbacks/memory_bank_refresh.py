"""`MemoryBankRefresh`: recompute a memory bank with the current encoder."""

import keras


@keras.saving.register_keras_serializable(package="keras_contrastive")
class MemoryBankRefresh(keras.callbacks.Callback):
    """Recomputes every memory-bank entry at the end of every `every`-th epoch.

    The bank of a `keras_contrastive.models.MemoryBankModel` is written a batch at
    a time during training, so its entries come from encoders of different ages;
    Wu et al. (2018) refresh it. At the end of epochs `every`, `2 every`, ... this
    callback encodes all of `data` with the current networks in inference mode and
    overwrites the entries of the ids it holds
    (`MemoryBankModel.refresh_memory_bank`), with a progress bar.

    Args:
        data: the training examples with their ids: `(ids, images)` arrays, an
            `{"ids": ..., "images": ...}` dict of arrays, or an iterable of such
            batches (e.g. a `tf.data.Dataset`).
        every: refresh every this many epochs.
        batch_size: batch size of the encoding when `data` holds arrays.
        verbose: 1 shows a progress bar, 0 is silent.

    Example:

    ```python
    from keras_contrastive.callbacks import MemoryBankRefresh

    model = MemoryBankModel(encoder, num_examples=len(images))
    model.compile(optimizer="adam")
    ids = np.arange(len(images))
    model.fit((ids, images), epochs=10,
              callbacks=[MemoryBankRefresh((ids, images), every=2)])
    ```
    """

    def __init__(self, data, every=1, batch_size=256, verbose=1):
        super().__init__()
        for name, value in (("every", every), ("batch_size", batch_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive int; got {value!r}.")
        if data is None:
            raise ValueError("`data` must hold the training ids and images.")
        self.data = data
        self.every = every
        self.batch_size = batch_size
        self.verbose = verbose
        self.refreshed_epochs = []

    def on_train_begin(self, logs=None):
        if not hasattr(self.model, "refresh_memory_bank"):
            raise TypeError(
                "MemoryBankRefresh needs a model with a memory bank "
                f"(MemoryBankModel); got {type(self.model).__name__}."
            )

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        if self.verbose:
            print(f"Epoch {epoch + 1}: refreshing the memory bank")
        self.model.refresh_memory_bank(
            self.data, batch_size=self.batch_size, verbose=self.verbose
        )
        self.refreshed_epochs.append(epoch)

    def get_config(self):
        # Array data round-trips through `serialize_keras_object` (as for
        # KNNMonitor); a dataset cannot be serialized and must be passed again.
        return {
            "data": self.data,
            "every": self.every,
            "batch_size": self.batch_size,
            "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        data = config["data"]
        if isinstance(data, dict) and set(data) == {"ids", "images"}:
            data = {k: _maybe_deserialize(v) for k, v in data.items()}
        elif isinstance(data, (tuple, list)):
            data = tuple(_maybe_deserialize(part) for part in data)
        config["data"] = data
        return cls(**config)


def _maybe_deserialize(value):
    if isinstance(value, dict):
        return keras.saving.deserialize_keras_object(value)
    return value
