"""examples/timeseries_contrastive.py --quick: BasicMotions windows, temporal
pairs and CPC for a few steps, every row of the accuracy table printed."""

import os
import re
import subprocess
import sys

import keras
import pytest

from keras_contrastive.datasets.ucr_uea import bundled_ts_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(
    bundled_ts_dir("BasicMotions") is None,
    reason="needs the UCR/UEA files bundled with sktime or aeon "
    "(`pip install --no-deps sktime`; tasks.py installs it for the tests)",
)
def test_timeseries_example_runs_quickly():
    result = subprocess.run(
        [sys.executable, "examples/timeseries_contrastive.py", "--quick"],
        cwd=ROOT,
        env=dict(os.environ, KERAS_BACKEND=keras.backend.backend()),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rows = dict(
        re.findall(r"^\| ([^|]+?) \| ([\d.]+)% \| [\d.]+% \|$", result.stdout, re.M)
    )
    assert set(rows) == {
        "raw windows",
        "random-init encoder",
        "temporal pairs (NT-Xent)",
        "CPC",
    }, result.stdout
    # 4 balanced classes: anything sensible is far above 25%.
    assert all(float(accuracy) > 40.0 for accuracy in rows.values()), result.stdout
