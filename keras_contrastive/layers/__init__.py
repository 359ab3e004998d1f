"""keras_contrastive.layers: projection / prediction heads, image augmentation and
multi-view batching."""

from keras_contrastive.layers.augmentation import (
    ImageAugmentationLayer,
    RandomApply,
    RandomColorDistortion,
    RandomCutout,
    RandomGaussianBlur,
    RandomGaussianNoise,
    RandomResizedCrop,
    SimCLRAugmenter,
)
from keras_contrastive.layers.heads import MLPHead, PredictionHead, ProjectionHead
from keras_contrastive.layers.multi_view import MultiView

__all__ = [
    "ImageAugmentationLayer",
    "MLPHead",
    "MultiView",
    "PredictionHead",
    "ProjectionHead",
    "RandomApply",
    "RandomColorDistortion",
    "RandomCutout",
    "RandomGaussianBlur",
    "RandomGaussianNoise",
    "RandomResizedCrop",
    "SimCLRAugmenter",
]
