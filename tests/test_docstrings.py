"""Every runnable example (`>>>`) in keras_contrastive's docstrings, on this backend.

The package is walked with `pkgutil`, every module (private ones included) is
imported and `doctest.DocTestFinder` collects the examples of the objects it
defines: one test per module that has any. `python3 tasks.py test` runs this file
once per backend (KERAS_BACKEND is per process), so each example runs on
TensorFlow, JAX and PyTorch. A module whose import needs an optional package that
is not installed (keras-hub, usearch, matplotlib) is skipped with the reason; any
other import error fails.
"""

import doctest
import importlib
import pkgutil

import pytest

import keras_contrastive

# Packages some modules import and the test environment may lack.
OPTIONAL_PACKAGES = ("keras_hub", "usearch", "matplotlib")

# Modules known to carry examples: if the walk stops finding them, it is broken.
KNOWN_WITH_EXAMPLES = (
    "keras_contrastive.losses.view_pair",
    "keras_contrastive.losses.metric",
    "keras_contrastive.layers.state",
    "keras_contrastive.evaluation.knn",
    "keras_contrastive.datasets.temporal",
)

# ELLIPSIS: error examples show the start of the message and "...".
OPTIONFLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def _module_names():
    """Every module and package under keras_contrastive, sorted."""
    names = ["keras_contrastive"]
    for info in pkgutil.walk_packages(
        keras_contrastive.__path__, prefix="keras_contrastive."
    ):
        names.append(info.name)
    return sorted(names)


def _import(name):
    """(module, None), or (None, skip reason) when an optional package is missing."""
    try:
        return importlib.import_module(name), None
    except ImportError as error:
        missing = getattr(error, "name", None) or ""
        if missing.split(".")[0] in OPTIONAL_PACKAGES:
            return None, f"{name} needs the optional package {missing!r}"
        raise


def _doctests(module):
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [test for test in finder.find(module) if test.examples]


def _cases():
    cases = []
    for name in _module_names():
        module, skip = _import(name)
        if skip:
            cases.append(pytest.param(name, marks=pytest.mark.skip(reason=skip)))
        elif _doctests(module):
            cases.append(name)
    return cases


CASES = _cases()


def _case_names():
    return [case if isinstance(case, str) else case.values[0] for case in CASES]


def test_the_walk_finds_the_documented_modules():
    found = _case_names()
    missing = [name for name in KNOWN_WITH_EXAMPLES if name not in found]
    assert not missing, f"no docstring examples collected from {missing}"
    assert len(found) >= 20, found


@pytest.mark.parametrize("module_name", CASES)
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    report = []
    for test in _doctests(module):
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, "".join(report)
