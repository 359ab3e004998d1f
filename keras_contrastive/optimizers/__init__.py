"""keras_contrastive.optimizers: LARS and learning-rate schedules."""

from keras_contrastive.optimizers.lars import LARS
from keras_contrastive.optimizers.schedules import (
    WarmupCosineDecay,
    scaled_learning_rate,
)

__all__ = ["LARS", "WarmupCosineDecay", "scaled_learning_rate"]
