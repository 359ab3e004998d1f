"""`keras_contrastive.distribute` on a single device, and the torch refusal."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_contrastive import distribute
from keras_contrastive.models import SimCLR
from tests.methods.helpers import linear_encoder, linear_head


def test_single_device_is_the_identity():
    x = np.arange(6.0, dtype="float32").reshape(3, 2)
    assert distribute.num_replicas() == 1
    assert distribute.replica_offset(3) == 0
    assert int(ops.convert_to_numpy(distribute.replica_id())) == 0
    np.testing.assert_array_equal(ops.convert_to_numpy(distribute.gather(x)), x)
    assert float(ops.convert_to_numpy(distribute.scale_loss(ops.ones(())))) == 1.0
    distribute.check_supported()  # nothing requested: no error


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="torch only")
def test_torch_refuses_a_multi_device_distribution(monkeypatch):
    class FakeMesh:
        devices = np.array(["cpu:0", "cpu:1"])

    class FakeDistribution:
        device_mesh = FakeMesh()

    monkeypatch.setattr(keras.distribution, "distribution", lambda: FakeDistribution())
    model = SimCLR(
        linear_encoder(),
        projection_head=linear_head(),
        augmenter=keras.layers.Identity(),
    )
    model.compile(optimizer="sgd")
    x = np.zeros((4, 2, 2, 1), "float32")
    with pytest.raises(ValueError, match="no multi-device `fit` for torch"):
        model.fit(x, batch_size=4, verbose=0)
