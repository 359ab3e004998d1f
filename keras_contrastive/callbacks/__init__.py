"""keras_contrastive.callbacks: schedules and epoch-level work during `fit`."""

from keras_contrastive.callbacks.knn_monitor import KNNMonitor
from keras_contrastive.callbacks.memory_bank_refresh import MemoryBankRefresh
from keras_contrastive.callbacks.momentum_schedule import MomentumSchedule
from keras_contrastive.callbacks.sts_evaluator import STSEvaluator

__all__ = ["KNNMonitor", "MemoryBankRefresh", "MomentumSchedule", "STSEvaluator"]
