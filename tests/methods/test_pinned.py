"""Every method's training behaviour, pinned: refactors must not change it.

Each configuration is built on fixed images, every weight (and queue / bank) is set
from a NumPy generator, every seed-generator state to one fixed value, and the model
is fit for three one-batch epochs with SGD. The logged loss, contrastive accuracy
and embedding std of each epoch must equal the values recorded (per backend, since
the random streams of the augmenters differ between backends) in
`pinned_behaviour.json`, which was written by the code before the method base was
introduced.

Run `KERAS_BACKEND=<b> python -m tests.methods.test_pinned --record` to record a
backend's values again (only when a behaviour change is intended).
"""

import json
import os
import sys

import keras
import numpy as np
import pytest

from keras_contrastive.layers import ProjectionHead
from keras_contrastive.models import (
    BYOL,
    MemoryBankModel,
    MoCHi,
    MoCo,
    SimCLR,
    SimSiam,
)
from tests.methods.helpers import random_images, tiny_encoder, to_numpy

PINNED = os.path.join(os.path.dirname(__file__), "pinned_behaviour.json")
BACKEND = keras.backend.backend()
N = 16


def _configs():
    def head():
        return ProjectionHead(hidden_dims=(8,), output_dim=6)

    return {
        "simclr": lambda: SimCLR(tiny_encoder(size=16), head(), temperature=0.5),
        "simclr_cached": lambda: SimCLR(
            tiny_encoder(size=16, batch_norm=False), head(), gradient_cache=4
        ),
        "moco": lambda: MoCo(
            tiny_encoder(size=16), head(), queue_size=32, momentum=0.9, seed=1
        ),
        "moco_symmetric_bn2": lambda: MoCo(
            tiny_encoder(size=16),
            head(),
            queue_size=32,
            momentum=0.9,
            symmetric=True,
            batch_norm_groups=2,
            seed=1,
        ),
        "mochi": lambda: MoCo(
            tiny_encoder(size=16),
            head(),
            queue_size=32,
            momentum=0.9,
            hard_negative_mixing=MoCHi(8, 8, 4),
            seed=1,
        ),
        "byol": lambda: BYOL(tiny_encoder(size=16), head(), momentum=0.9),
        "simsiam": lambda: SimSiam(tiny_encoder(size=16)),
        "bank_info_nce": lambda: MemoryBankModel(
            tiny_encoder(size=16), N, head(), num_negatives=8, seed=1
        ),
        "bank_nce": lambda: MemoryBankModel(
            tiny_encoder(size=16), N, head(), num_negatives=8, loss="nce", seed=1
        ),
    }


CONFIGS = _configs()


def _data(name):
    images = random_images(np.random.default_rng(0), n=N, size=16)
    return (np.arange(N), images) if name.startswith("bank") else images


def _set_state(model):
    """Every weight from one NumPy stream (in each network's own order), the
    queue/bank rows as unit vectors, every seed state to the same value."""
    rng = np.random.default_rng(42)
    networks = [
        getattr(model, name, None)
        for name in ("encoder", "projection_head", "prediction_head")
    ]
    for network in networks:
        if network is None:
            continue
        for weight in network.weights:
            if weight.name == "seed_generator_state":
                continue
            value = rng.normal(0.0, 0.3, tuple(weight.shape))
            if weight.name == "moving_variance":
                value = np.abs(value) + 0.5
            weight.assign(value.astype(weight.dtype))
    for holder, name in (("queue", "keys"), ("memory_bank", "entries")):
        layer = getattr(model, holder, None)
        if layer is not None:
            variable = getattr(layer, name)
            rows = rng.normal(size=tuple(variable.shape))
            rows /= np.linalg.norm(rows, axis=1, keepdims=True)
            variable.assign(rows.astype("float32"))
    # Seed-generator states are variables but not weights.
    for variable in model.variables:
        if variable.name == "seed_generator_state":
            variable.assign(np.array([7, 0]).astype(variable.dtype))


def run(name):
    keras.utils.set_random_seed(1234)
    model = CONFIGS[name]()
    x = _data(name)
    sample = tuple(part[:2] for part in x) if isinstance(x, tuple) else x[:2]
    model.build_for(sample)
    _set_state(model)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit(x, batch_size=N, epochs=3, shuffle=False, verbose=0)
    logs = history.history
    return {
        key: [float(v) for v in logs[key]]
        for key in ("loss", "contrastive_accuracy", "embedding_std")
    } | {"features": float(np.mean(np.abs(to_numpy(model.predict(_images(x))))))}


def _images(x):
    return x[1] if isinstance(x, tuple) else x


def _pinned():
    with open(PINNED) as f:
        return json.load(f)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_behaviour_is_pinned(name):
    expected = _pinned()[BACKEND][name]
    got = run(name)
    for key, values in expected.items():
        np.testing.assert_allclose(
            got[key], values, rtol=2e-4, atol=2e-5, err_msg=f"{name}: {key}"
        )


if __name__ == "__main__" and "--record" in sys.argv:
    pinned = _pinned() if os.path.exists(PINNED) else {}
    pinned[BACKEND] = {name: run(name) for name in sorted(CONFIGS)}
    with open(PINNED, "w") as f:
        json.dump(pinned, f, indent=1, sort_keys=True)
    print(json.dumps(pinned[BACKEND], indent=1))
