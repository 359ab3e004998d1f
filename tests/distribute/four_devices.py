"""Test-side helpers for the 4-virtual-device runs (replica_run.py, sync_bn_run.py).

The device count must be fixed before the backend starts, so a run happens in a
fresh subprocess that writes an .npz keyed `case|single|variable` and
`case|multi|variable`; these helpers start it and pair up its results.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

needs_devices = pytest.mark.skipif(
    BACKEND == "torch", reason="Keras 3.15 has no multi-device fit on torch"
)


def run_on_four_devices(module, path, timeout):
    """Runs `python -m module path` on 4 virtual devices; returns its arrays."""
    env = dict(os.environ, KERAS_BACKEND=BACKEND)
    if BACKEND == "jax":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    result = subprocess.run(
        [sys.executable, "-m", module, str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def single_and_multi(runs, case):
    """Yields (variable, single-device value, 4-device value) of one case."""
    for key, single in runs.items():
        name, run, variable = key.split("|")
        if name == case and run == "single":
            yield variable, single, runs[f"{case}|multi|{variable}"]


def assert_four_devices_used(single, multi):
    assert int(single) == 1 and int(multi) == 4, (single, multi)
