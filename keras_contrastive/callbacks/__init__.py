"""keras_contrastive.callbacks: schedules and epoch-level work during `fit`."""

from keras_contrastive.callbacks.knn_monitor import KNNMonitor
from keras_contrastive.callbacks.memory_bank_refresh import MemoryBankRefresh
from keras_contrastive.callbacks.momentum_schedule import MomentumSchedule

__all__ = ["KNNMonitor", "MemoryBankRefresh", "MomentumSchedule"]
