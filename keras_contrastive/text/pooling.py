"""Token embeddings -> one sentence embedding (Reimers & Gurevych 2019, section 3)."""

import keras
from keras import ops

from keras_contrastive import _validation as v

POOLING_MODES = ("mean", "cls", "max")


@keras.saving.register_keras_serializable(package="keras_contrastive")
class SentencePooling(keras.layers.Layer):
    """Pools a sequence of token embeddings into one vector, ignoring padding.

    Sentence-BERT (Reimers & Gurevych 2019) compares three strategies and finds
    the mean of the token embeddings best; sentence-transformers computes the same
    three, as here:

    - `"mean"`: the average over real tokens ([CLS] and [SEP] included), i.e.
      `sum(x * mask) / max(sum(mask), 1e-9)`;
    - `"cls"`: the first token's embedding ([CLS]);
    - `"max"`: the element-wise maximum over real tokens (padding set to the
      dtype's lowest value first).

    Call: `pooling(sequence, padding_mask)` with `sequence` (N, L, d) and
    `padding_mask` (N, L) (1 = token, 0 = padding) -> (N, d) float32. The
    sequence is cast to float32 first (mixed precision pools in float32).
    """

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        self.mode = v.check_one_of("mode", mode, POOLING_MODES)

    def call(self, sequence, padding_mask):
        sequence = ops.cast(sequence, "float32")
        if self.mode == "cls":
            return sequence[:, 0, :]
        mask = ops.cast(padding_mask, "float32")[:, :, None]
        if self.mode == "mean":
            total = ops.sum(sequence * mask, axis=1)
            count = ops.maximum(ops.sum(mask, axis=1), 1e-9)
            return total / count
        lowest = ops.full_like(sequence, -3.4028234e38)
        return ops.max(ops.where(mask > 0, sequence, lowest), axis=1)

    def compute_output_shape(self, sequence_shape, padding_mask_shape=None):
        return (sequence_shape[0], sequence_shape[-1])

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config
