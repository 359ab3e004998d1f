"""Four devices, same answer: every loss, gradient and state update of a step on
4 virtual CPU devices equals the single-device step on the same global batch.

The runs happen in a subprocess (tests/distribute/replica_run.py) because the
device count must be fixed before the backend starts: TensorFlow gets 4 logical
CPUs under `MirroredStrategy` (each replica computes 2 of the 8 rows), JAX 4 host
devices under `keras.distribution.DataParallel`. View-pair models are stepped
once with an optimizer that sets each variable to its all-reduced gradient, so the
comparison covers every gradient; MoCo, BYOL and the memory bank take 3 SGD steps
and their queue, pointer, momentum copies and bank are compared.
"""

import numpy as np
import pytest

from tests.distribute.four_devices import (
    BACKEND,
    assert_four_devices_used,
    needs_devices,
    run_on_four_devices,
    single_and_multi,
)
from tests.methods.harness import METHODS

CASES = [
    "two_tower/nt_xent",
    "two_tower/info_nce",
    "two_tower/symmetric_info_nce",
    "two_tower/binary_nce",
    "two_tower/debiased_nt_xent",
    "two_tower/nt_xent_streaming",
    "two_tower/info_nce_streaming",
    "two_tower/symmetric_info_nce_streaming",
    "two_tower/siglip_loss",
    "two_tower/barlow_twins_loss",
    "two_tower/barlow_twins_loss_wide",
    "loss_object/barlow_twins",
    "loss_object/siglip",
    "labels/supervised_contrastive",
    "labels/triplet_all",
    "labels/triplet_semi_hard",
    "labels/triplet_hard",
    "labels/lifted_structure",
    "labels/contrastive",
    "memory_bank/nce",
    "gradients/clip",
    "gradients/clip_sigmoid",
] + [f"method/{name}" for name, method in METHODS.items() if method.distributed]

pytestmark = needs_devices


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    path = tmp_path_factory.mktemp("replicas") / "runs.npz"
    # Every case in one process: about 11 minutes on TensorFlow on 2 busy cores,
    # so the limit is there to catch a hang, not to time a slow machine.
    return run_on_four_devices("tests.distribute.replica_run", path, timeout=1800)


@pytest.mark.parametrize("case", CASES)
def test_four_devices_equal_one(runs, case):
    pairs = list(single_and_multi(runs, case))
    assert pairs, f"no results for {case}"
    # A method case takes three SGD steps at learning rate 0.5: each step's float32
    # rounding (sums taken in another order by the 4-replica all-reduce) feeds the
    # next, so it gets 1e-4 (CLIP-sigmoid measured 1.4e-5 to 3.0e-5 from run to run
    # under TensorFlow's oneDNN AVX-512 kernels; 1e-5 on other processors); one-step
    # gradient cases 1e-5. A distribution bug moves results by far more.
    tolerance = 1e-4 if case.startswith("method/") else 1e-5
    for variable, single, multi in pairs:
        if variable == "devices":
            assert_four_devices_used(single, multi)
        elif single.dtype.kind in "fc":
            # Relative to the variable's largest entry, floored at 0.1: a gradient
            # that is 0 in theory (a bias under a translation-invariant distance
            # loss) is pure round-off on both sides.
            scale = max(float(np.max(np.abs(single))), 0.1)
            error = float(np.max(np.abs(single - multi))) / scale
            assert error <= tolerance, f"{case}: {variable} differs by {error:.2e}"
        else:  # queue pointer, seed states, counters
            np.testing.assert_array_equal(single, multi, err_msg=f"{case}:{variable}")


@pytest.mark.skipif(BACKEND != "tensorflow", reason="replicas run the step on TF")
def test_replicas_draw_their_own_augmentations(runs):
    # One image repeated 8 times, 2 rows on each of 4 replicas: all 8 views differ.
    views = runs["augmentation|multi|views"].reshape(8, -1)
    distances = np.abs(views[:, None] - views[None]).max(axis=-1)
    off_diagonal = distances[~np.eye(8, dtype=bool)]
    assert off_diagonal.min() > 1.0, np.round(distances, 1)
