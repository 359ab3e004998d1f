"""One SimCLR step with a batch-norm encoder on 1 and on 4 (virtual CPU) devices.

Started by tests/distribute/test_sync_batch_norm.py in a fresh process (the device
count must be set before the backend starts), like tests/distribute/replica_run.py,
whose devices, strategy and `run_cases` it reuses:

    KERAS_BACKEND=tensorflow python -m tests.distribute.sync_bn_run OUT.npz
    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=4 \\
        python -m tests.distribute.sync_bn_run OUT.npz

Three models, each stepped once with the optimizer that sets every variable to its
(all-reduced) gradient, so that gradients and batch-norm moving statistics are
compared: `plain` (`keras.layers.BatchNormalization` in the encoder),
`synchronized` (the same encoder through
`keras_contrastive.distribute.synchronize_batch_norm`) and `synchronized_head`
(batch norm only in a `ProjectionHead(synchronized_batch_norm=True)`). Results go
to an .npz keyed `case|single|variable` and `case|multi|variable`.
"""

import sys

import keras
import numpy as np

from keras_contrastive.distribute import synchronize_batch_norm
from keras_contrastive.layers import ProjectionHead
from keras_contrastive.models import SimCLR

# Importing replica_run gives TensorFlow its 4 logical CPUs (importing Keras and
# the library does not start TensorFlow's runtime, so this still comes in time).
from tests.distribute.replica_run import BATCH, GradientRecorder, run_cases
from tests.methods.helpers import linear_head, random_images, tiny_encoder


def simclr(encoder, head=None):
    return SimCLR(
        encoder,
        projection_head=head or linear_head(),
        augmenter=keras.layers.Identity(),
    )


#: The cases: batch norm in the encoder, plain or synchronised, and in the head.
MODELS = {
    "plain": lambda: simclr(tiny_encoder(batch_norm=True)),
    "synchronized": lambda: simclr(
        synchronize_batch_norm(tiny_encoder(batch_norm=True))
    ),
    "synchronized_head": lambda: simclr(
        tiny_encoder(batch_norm=False),
        ProjectionHead(hidden_dims=(4,), output_dim=3, synchronized_batch_norm=True),
    ),
}


def main(path):
    keras.utils.set_random_seed(0)
    x = random_images(np.random.default_rng(0), n=BATCH, size=8).astype("float32")
    cases = {name: (make, x, GradientRecorder) for name, make in MODELS.items()}
    np.savez(path, **run_cases(cases))


if __name__ == "__main__":
    main(sys.argv[1])
