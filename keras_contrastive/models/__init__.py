"""Contrastive methods as Keras models, sharing one training step.

Bases for writing a method (docs/adding_a_method.md): `ContrastiveModel` (the
training step), `ImageContrastiveModel` (views, default heads, build),
`MomentumModel` (momentum copies), `ExampleIdsInput` (inputs with example ids).
`image_backbone_encoder` makes a pretrained image backbone (keras.applications,
keras-hub) an encoder of the image methods. `channels_last_convolutions` runs
Keras' convolutions on PyTorch without its layout copies and
`fused_batch_normalization` its batch normalization in PyTorch's fused kernels
(the steps use both).
"""

from keras_contrastive.layers.state import FeatureQueue, MemoryBank
from keras_contrastive.models.backbones import image_backbone_encoder
from keras_contrastive.models.barlow_twins import BarlowTwins
from keras_contrastive.models.byol import BYOL
from keras_contrastive.models.clip import CLIP, ImageTextPairs
from keras_contrastive.models.contrastive_model import ContrastiveModel
from keras_contrastive.models.cpc import CPC
from keras_contrastive.models.deep_infomax import CriticEmbedding, DeepInfoMax
from keras_contrastive.models.example_ids import ExampleIdsInput
from keras_contrastive.models.gradient_cache import ChunkSize, GradientCache
from keras_contrastive.models.image_model import ImageContrastiveModel
from keras_contrastive.models.memory_bank import MemoryBankModel
from keras_contrastive.models.moco import MoCHi, MoCo
from keras_contrastive.models.momentum import MomentumModel
from keras_contrastive.models.nnclr import NNCLR
from keras_contrastive.models.predictor import PredictorModel
from keras_contrastive.models.sbert import SBERT
from keras_contrastive.models.simclr import SimCLR
from keras_contrastive.models.simcse import SimCSE
from keras_contrastive.models.simsiam import SimSiam
from keras_contrastive.models.torch_batch_norm import fused_batch_normalization
from keras_contrastive.models.torch_convolution import channels_last_convolutions

__all__ = [
    "BYOL",
    "BarlowTwins",
    "CLIP",
    "CPC",
    "ChunkSize",
    "ContrastiveModel",
    "CriticEmbedding",
    "DeepInfoMax",
    "ExampleIdsInput",
    "FeatureQueue",
    "GradientCache",
    "ImageContrastiveModel",
    "ImageTextPairs",
    "MemoryBank",
    "MemoryBankModel",
    "MoCHi",
    "MoCo",
    "MomentumModel",
    "NNCLR",
    "PredictorModel",
    "SBERT",
    "SimCLR",
    "SimCSE",
    "SimSiam",
    "channels_last_convolutions",
    "fused_batch_normalization",
    "image_backbone_encoder",
]
