"""Contrastive methods as Keras models, sharing one training step."""

from keras_contrastive.models.byol import BYOL, SimSiam
from keras_contrastive.models.contrastive_model import ContrastiveModel
from keras_contrastive.models.gradient_cache import ChunkSize, GradientCache
from keras_contrastive.models.memory_bank import MemoryBank, MemoryBankModel
from keras_contrastive.models.moco import MoCHi, MoCo
from keras_contrastive.models.simclr import SimCLR

__all__ = [
    "BYOL",
    "ChunkSize",
    "ContrastiveModel",
    "GradientCache",
    "MemoryBank",
    "MemoryBankModel",
    "MoCHi",
    "MoCo",
    "SimCLR",
    "SimSiam",
]
