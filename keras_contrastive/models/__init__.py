"""Contrastive methods as Keras models, sharing one training step."""

from keras_contrastive.models.contrastive_model import ContrastiveModel
from keras_contrastive.models.simclr import SimCLR

__all__ = ["ContrastiveModel", "SimCLR"]
