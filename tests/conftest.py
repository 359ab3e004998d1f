"""Shared test set-up: one backend per process (KERAS_BACKEND), seeded randomness."""

import os

import keras
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BACKEND = keras.backend.backend()

# Under pytest-xdist each worker gets its share of the cores: PyTorch's intra-op
# pool otherwise takes every core in every worker, and the oversubscribed workers
# run its training tests about twice as slowly.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if BACKEND == "torch" and _WORKERS > 1:
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // _WORKERS))
SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture(autouse=True)
def _seed_everything():
    keras.utils.set_random_seed(1234)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def backend():
    return BACKEND


@pytest.fixture
def rng():
    return np.random.default_rng(0)
