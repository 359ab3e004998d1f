"""keras_contrastive: contrastive and self-supervised representation learning.

Contrastive and self-supervised representation learning for Keras 3.

Works on the TensorFlow, JAX and PyTorch backends (whichever `KERAS_BACKEND` names).
"""

from keras_contrastive import (
    callbacks,
    datasets,
    evaluation,
    layers,
    losses,
    models,
    optimizers,
    text,
    visualization,
)

__version__ = "0.1.0"

__all__ = [
    "callbacks",
    "datasets",
    "evaluation",
    "layers",
    "losses",
    "models",
    "optimizers",
    "text",
    "visualization",
]
