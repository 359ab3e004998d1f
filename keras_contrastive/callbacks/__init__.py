"""keras_contrastive.callbacks: epoch-level work during `fit`."""

from keras_contrastive.callbacks.knn_monitor import KNNMonitor

__all__ = ["KNNMonitor"]
