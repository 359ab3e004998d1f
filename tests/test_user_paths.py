"""No user-facing text points at paths of this repository's development setup.

README.md, docs/ and the package's docstrings are read by users, who have no
`../shared/` folder beside their clone. (benchmarks/ and examples/ scripts may
default to it for the project's own runs.)
"""

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEV_PATH = re.compile(r"(?:\.\./|\.\.\\)+shared\b")


def _pages():
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _docstrings(path):
    """(line, text) of the module's, classes' and functions' docstrings."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = [tree] + [
        node
        for node in ast.walk(tree)
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    found = []
    for node in nodes:
        docstring = ast.get_docstring(node, clean=False)
        if docstring:
            found.append((node.body[0].lineno, docstring))
    return found


def _hits(text):
    return [match.group(0) for match in DEV_PATH.finditer(text)]


def test_the_pattern_finds_development_paths():
    assert _hits('load_stsb("../shared/data/stsb")') == ["../shared"]
    assert _hits("python x.py ../../shared/data/cifar10/train.npz")
    assert not _hits("the shared `logs` dict; path/to/stsb")


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_has_no_development_paths(page):
    lines = [
        f"{page.relative_to(ROOT)}:{number}: {line.strip()}"
        for number, line in enumerate(page.read_text().splitlines(), start=1)
        if _hits(line)
    ]
    assert not lines, "development-only paths:\n" + "\n".join(lines)


def test_docstrings_have_no_development_paths():
    modules = sorted((ROOT / "keras_contrastive").rglob("*.py"))
    assert len(modules) > 50
    found = [
        f"{path.relative_to(ROOT)}:{line}: {', '.join(_hits(text))}"
        for path in modules
        for line, text in _docstrings(path)
        if _hits(text)
    ]
    assert not found, "development-only paths in docstrings:\n" + "\n".join(found)
