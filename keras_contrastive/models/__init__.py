"""Contrastive methods as Keras models, sharing one training step."""

from keras_contrastive.models.contrastive_model import ContrastiveModel

__all__ = ["ContrastiveModel"]
