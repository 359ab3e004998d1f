"""MoCHi's options: hard negative mixing for MoCo (Kalantidis et al. 2020)."""

import keras

from keras_contrastive._validation import check_int, check_positive_int, fail


@keras.saving.register_keras_serializable(package="keras_contrastive")
class MoCHi:
    """MoCHi's hard negative mixing (Kalantidis et al. 2020), as a MoCo option.

    For each query, the `num_hard` queue entries most similar to it are its hard
    negatives; `num_synthetic` synthetic negatives are mixes of pairs of them and
    `num_query_mixes` more mix the query itself into one of them (with a weight
    below 0.5, so they stay negatives). They are normalised, carry no gradient and
    join the queue as extra per-query negatives of the loss (training only). See
    `keras_contrastive.losses.mix_hard_negatives`.

    Args:
        num_hard: N, hard negatives considered per query (at most the queue size).
        num_synthetic: s, synthetic negatives mixed from two hard negatives.
        num_query_mixes: s', synthetic negatives mixed from the query and one hard
            negative.

    Example:

    >>> mixing = MoCHi(num_hard=1024, num_synthetic=1024, num_query_mixes=256)
    """

    def __init__(self, num_hard=1024, num_synthetic=1024, num_query_mixes=256):
        self.num_hard = check_positive_int("num_hard", num_hard)
        self.num_synthetic = check_int("num_synthetic", num_synthetic, minimum=0)
        self.num_query_mixes = check_int("num_query_mixes", num_query_mixes, minimum=0)
        if num_synthetic > 0 and num_hard < 2:
            fail(
                "num_hard",
                "at least 2 when `num_synthetic` > 0 (synthetic negatives mix "
                "pairs of hard negatives)",
                num_hard,
            )

    def get_config(self):
        return {
            "num_hard": self.num_hard,
            "num_synthetic": self.num_synthetic,
            "num_query_mixes": self.num_query_mixes,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return (
            f"MoCHi(num_hard={self.num_hard}, num_synthetic={self.num_synthetic}, "
            f"num_query_mixes={self.num_query_mixes})"
        )
