"""The `.ts` reader on hand-written files, and the sets bundled with sktime/aeon."""

import textwrap

import numpy as np
import pytest

from keras_contrastive.datasets import load_ucr_uea, read_ts
from keras_contrastive.datasets.ucr_uea import bundled_ts_dir

TS = """# A comment line.
@problemName Toy
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true walk run
@data
1,2,3:4,5,6:run
0.5,?:7,8:walk

-1,-2,-3,-4:1,1,1,1:run
"""


def test_read_ts_parses_dimensions_missing_values_and_lengths(tmp_path):
    path = tmp_path / "Toy_TRAIN.ts"
    path.write_text(TS)
    series, labels, names = read_ts(str(path))
    assert names == ["walk", "run"]
    np.testing.assert_array_equal(labels, [1, 0, 1])
    assert series.shape == (3, 4, 2) and series.dtype == np.float32
    np.testing.assert_array_equal(series[0, :3], [[1, 4], [2, 5], [3, 6]])
    assert np.isnan(series[0, 3]).all()  # padding
    assert series[1, 0, 0] == 0.5 and np.isnan(series[1, 1, 0])  # "?" is missing
    np.testing.assert_array_equal(series[1, :2, 1], [7, 8])
    np.testing.assert_array_equal(series[2, :, 0], [-1, -2, -3, -4])
    # A folder, the archive's <name>/ subfolder, or the file itself.
    for path_argument in (tmp_path, str(path)):
        again, _, _ = load_ucr_uea("Toy", "train", path=str(path_argument))
        np.testing.assert_array_equal(np.isnan(again), np.isnan(series))


@pytest.mark.parametrize(
    "text,match",
    [
        (TS.replace("@classLabel true walk run\n", ""), "no '@classLabel true"),
        (TS.replace(":run\n0.5", ":jump\n0.5"), "class label 'jump' is not one"),
        (TS.replace("1,2,3:", "1,x,3:"), "'x' is not a number"),
        (TS.replace("0.5,?:7,8:walk", "0.5,?:walk"), "series 1 has 1 dimensions"),
        (TS.replace("@problemName", "problemName"), "expected an @key header"),
        (TS.split("@data")[0] + "@data\n", "no series after '@data'"),
    ],
)
def test_malformed_files_name_the_problem(tmp_path, text, match):
    path = tmp_path / "Bad_TRAIN.ts"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_ts(str(path))


def test_bad_arguments_and_missing_sets(tmp_path):
    with pytest.raises(ValueError, match="`split` must be one of"):
        load_ucr_uea("BasicMotions", "validation")
    with pytest.raises(TypeError, match="`name` must be a non-empty string"):
        load_ucr_uea(3)
    with pytest.raises(FileNotFoundError, match="No Nope_TRAIN.ts"):
        load_ucr_uea("Nope", path=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="is not bundled with an installed"):
        load_ucr_uea("NoSuchSetAnywhere")


@pytest.mark.skipif(
    bundled_ts_dir("BasicMotions") is None,
    reason="needs the UCR/UEA files bundled with sktime or aeon "
    "(`pip install --no-deps sktime`; tasks.py installs it for the tests)",
)
def test_bundled_basic_motions():
    train, train_labels, names = load_ucr_uea("BasicMotions", "train")
    test, test_labels, _ = load_ucr_uea("BasicMotions", "test")
    assert names == ["Standing", "Running", "Walking", "Badminton"]
    assert train.shape == test.shape == (40, 100, 6)
    assert np.isfinite(train).all() and np.isfinite(test).all()
    np.testing.assert_array_equal(np.bincount(train_labels), [10, 10, 10, 10])
    np.testing.assert_array_equal(np.bincount(test_labels), [10, 10, 10, 10])


@pytest.mark.skipif(
    bundled_ts_dir("BasicMotions") is None, reason="needs sktime's or aeon's files"
)
def test_docstring_example_runs():
    source = load_ucr_uea.__doc__.split("```python")[1].split("```")[0]
    namespace = {}
    exec(compile(textwrap.dedent(source), "load_ucr_uea docstring", "exec"), namespace)
    assert namespace["series"].shape == (40, 100, 6)
