"""README.md's module table ("What is inside") lists every public name."""

import importlib
import pathlib
import pkgutil
import re

import pytest

import keras_contrastive

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
ROW = re.compile(r"^\| `(keras_contrastive\.[A-Za-z_.]+)` \|(.*)\|\s*$")
NAME = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")

# Every subpackage and module of keras_contrastive not starting with "_".
PUBLIC_MODULES = sorted(
    f"keras_contrastive.{info.name}"
    for info in pkgutil.iter_modules(keras_contrastive.__path__)
    if not info.name.startswith("_")
)


def _table_rows():
    """{module: the backticked names in its row} of README.md's module table."""
    rows = {}
    for line in README.read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group(1)] = set(NAME.findall(match.group(2)))
    return rows


def test_the_public_modules_are_found():
    assert "keras_contrastive.losses" in PUBLIC_MODULES
    assert "keras_contrastive.models" in PUBLIC_MODULES


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_readme_table_lists_every_public_name(module_name):
    module = importlib.import_module(module_name)
    public = getattr(module, "__all__", None)
    assert public is not None, f"{module_name} has no __all__"
    rows = _table_rows()
    assert module_name in rows, (
        f"README.md's module table ('What is inside') has no row for {module_name}"
    )
    missing = [name for name in public if name not in rows[module_name]]
    assert not missing, (
        f"README.md's module table row for {module_name} does not list "
        f"{', '.join(missing)} (each public name, in backticks)"
    )
