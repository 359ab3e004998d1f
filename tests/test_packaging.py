"""Packaging: what the wheel holds, and the Keras internals the package imports.

The wheel test builds from a copy of the checkout (so the build's `build/` and
`*.egg-info` never land in the working tree) with `pip wheel --no-deps
--no-build-isolation`: offline, with the setuptools of this environment (build
isolation would download one).
"""

import ast
import importlib
import importlib.metadata
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import keras
import pytest

from tests.conftest import BACKEND

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "keras_contrastive"

# The wheel does not depend on the backend, so it is built once per
# `python3 tasks.py test`: on the first backend of the run (KC_BACKENDS's first
# entry, else tensorflow, the first of tasks.py's BACKENDS).
WHEEL_BACKEND = os.environ.get("KC_BACKENDS", "tensorflow").split(",")[0].strip()

# Not copied for the build: version control, environments, caches, build outputs.
_NOT_COPIED = (
    ".git",
    ".venv",
    "venv",
    "outputs",
    "build",
    "dist",
    "shared",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".ruff_cache",
)


def _load_pyproject():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _setuptools_version():
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return None
    return tuple(int(part) for part in version.split(".")[:2] if part.isdigit())


def _copy_checkout(dest):
    """The files a clone has (git's view when available), copied to `dest`."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        if listed.returncode == 0:
            for name in listed.stdout.decode().split("\0"):
                source = ROOT / name
                if name and source.is_file():  # skips files deleted, not staged
                    (dest / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, dest / name)
            return
    shutil.copytree(
        ROOT, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*_NOT_COPIED)
    )


def _build_wheel(tmp_path):
    """(source copy, names in the wheel, its METADATA text)."""
    version = _setuptools_version()
    if version is None or version < (77,):
        pytest.skip(
            "building offline (no build isolation) needs the build backend "
            f"setuptools>=77 in this environment; found {version or 'none'}"
        )
    source = tmp_path / "source"
    out = tmp_path / "dist"
    source.mkdir()
    _copy_checkout(source)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(out),
            ".",
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"pip wheel failed:\n{result.stdout}{result.stderr}"
    wheels = sorted(out.glob("keras_contrastive-*.whl"))
    assert len(wheels) == 1, f"expected one wheel, found {os.listdir(out)}"
    with zipfile.ZipFile(wheels[0]) as archive:
        names = [name for name in archive.namelist() if not name.endswith("/")]
        metadata = archive.read(
            next(n for n in names if n.endswith(".dist-info/METADATA"))
        ).decode()
    return source, names, metadata


def _expected_package_files(source):
    """keras_contrastive's modules plus the package-data pyproject.toml declares."""
    package = source / "keras_contrastive"
    expected = {
        path.relative_to(source).as_posix()
        for path in package.rglob("*.py")
        if "__pycache__" not in path.parts
    }
    package_data = _load_pyproject()["tool"]["setuptools"]["package-data"]
    data = set()
    for pattern in package_data.get("keras_contrastive", []):
        data |= {path.relative_to(source).as_posix() for path in package.glob(pattern)}
    return expected, data


# One test, one build: under pytest-xdist, tests sharing a fixture may each build.
@pytest.mark.skipif(
    BACKEND != WHEEL_BACKEND,
    reason=f"the wheel does not depend on the backend: built on {WHEEL_BACKEND} "
    "only (the first of KC_BACKENDS, else tensorflow)",
)
def test_wheel_holds_the_package_its_data_and_license_only(tmp_path):
    source, names, metadata = _build_wheel(tmp_path)
    dist_info = f"keras_contrastive-{_load_pyproject()['project']['version']}.dist-info"

    # The package's modules and the package data pyproject.toml declares.
    modules, data = _expected_package_files(source)
    assert "keras_contrastive/datasets/data/cifar10_sample.npz" in data
    in_package = {name for name in names if name.startswith("keras_contrastive/")}
    assert sorted(modules - in_package) == [], "modules missing from the wheel"
    assert sorted(data - in_package) == [], "package data missing from the wheel"
    assert sorted(in_package - modules - data) == [], "unexpected package files"

    # Nothing else: no tests/, benchmarks/, examples/, docs/ at the top level.
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"keras_contrastive", dist_info}, (
        f"the wheel has other top-level entries: {sorted(top_level)}"
    )

    # The license and the metadata that names it; keras bounded above.
    assert f"{dist_info}/licenses/LICENSE" in names
    assert "License-Expression: Apache-2.0" in metadata
    keras_pin = next(
        line
        for line in metadata.splitlines()
        if re.match(r"Requires-Dist: keras[<>=!~ ]", line)
    )
    assert "<" in keras_pin, f"keras has no upper bound: {keras_pin}"


def test_license_file_is_apache_2():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert "Copyright 2026 The keras_contrastive authors" in text


def _keras_internal_imports():
    """(where, module, name) of every `keras.src` import in the package's code.

    `name` is None for `import keras.src.x`.
    """
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(ROOT).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "keras.src"
            ):
                for alias in node.names:
                    found.append((f"{where}:{node.lineno}", node.module, alias.name))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("keras.src"):
                        found.append((f"{where}:{node.lineno}", alias.name, None))
    return found


def _import_internal(module, name):
    imported = importlib.import_module(module)
    if name is None or hasattr(imported, name):
        return
    try:  # a submodule: `from pkg import mod`
        importlib.import_module(f"{module}.{name}")
    except ImportError:
        raise ImportError(f"{module} has no {name!r}") from None


def test_keras_internals_are_where_the_package_imports_them():
    """keras>=3.15,<3.16 in pyproject.toml: Keras may move these in a minor release."""
    internals = _keras_internal_imports()
    modules = {module for _, module, _ in internals}
    # The scan must see the imports it guards (see layers/augmentation/base.py).
    assert "keras.src.layers.preprocessing.data_layer" in modules, internals
    moved = []
    for where, module, name in internals:
        try:
            _import_internal(module, name)
        except ImportError as error:
            shown = f"from {module} import {name}" if name else f"import {module}"
            moved.append(f"  {shown}  ({where}): {error}")
    assert not moved, (
        f"Keras {keras.__version__} moved Keras internals that keras_contrastive "
        "imports; update these imports (or keep keras below this version in "
        "pyproject.toml):\n" + "\n".join(moved)
    )


def test_keras_pin_matches_the_import_guard():
    """The guard's ImportError names the range pyproject.toml pins."""
    pin = next(
        dep
        for dep in _load_pyproject()["project"]["dependencies"]
        if dep.startswith("keras")
    )
    assert "<" in pin, f"keras has no upper bound in pyproject.toml: {pin}"
    guard = (PACKAGE / "layers" / "augmentation" / "base.py").read_text()
    assert f'pip install "{pin}"' in guard, (
        f"update the ImportError in layers/augmentation/base.py to name {pin!r}"
    )


def test_import_guard_names_the_moved_internal(monkeypatch):
    """layers/augmentation/base.py turns a moved internal into a clear ImportError."""
    moved = "keras.src.layers.preprocessing.data_layer"
    monkeypatch.setitem(sys.modules, moved, None)  # importing it now fails
    path = PACKAGE / "layers" / "augmentation" / "base.py"
    spec = importlib.util.spec_from_file_location("_kc_guard_probe", path)
    with pytest.raises(ImportError, match="keras>=") as raised:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert moved in str(raised.value)
    assert keras.__version__ in str(raised.value)
