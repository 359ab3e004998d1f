"""Every ```python block of README.md and docs/*.md runs, on this backend.

A page's blocks run in order in one namespace (a page may open with a setup block
that defines the names its later blocks use), in a temporary working directory,
one test per page. `python3 tasks.py test` runs this file once per backend.

A block that cannot run here (several hosts, an accelerator, a download) is marked
on the line before its fence with an HTML comment, which Markdown renderers hide:

    <!-- no-run: several hosts -->
    ```python

The reason is required, and such blocks are kept rare (MAX_NO_RUN). Another
library's code shown for comparison (docs/migration.md) is marked with that
library's import name, and the block must import it, so our own code cannot hide
behind the mark:

    <!-- other-library: lightly -->
    ```python

README.md's module table is checked by tests/test_readme.py; this file runs its code.
"""

import pathlib
import re
import textwrap

import keras
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# A fence may be indented (inside a list item); its code is dedented.
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<info>[^`\n]*)\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
    re.S | re.M,
)
NO_RUN = re.compile(r"<!--\s*no-run:\s*(?P<reason>\S[^>]*?)\s*-->\s*$")
MAX_NO_RUN = 4
OTHER_LIBRARY = re.compile(r"<!--\s*other-library:\s*(?P<name>[A-Za-z_]\w*)\s*-->\s*$")


def _blocks(page):
    """[(line, info, code, no-run reason or None)] of a page's fenced blocks."""
    text = page.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        no_run = NO_RUN.search(before)
        other = OTHER_LIBRARY.search(before)
        line = text.count("\n", 0, match.start()) + 1
        if other:
            no_run_reason = f"other library: {other.group('name')}"
        else:
            no_run_reason = no_run.group("reason") if no_run else None
        blocks.append(
            (
                line,
                match.group("info").strip(),
                textwrap.dedent(match.group("code")),
                no_run_reason,
            )
        )
    return blocks


def _python_blocks(page):
    return [block for block in _blocks(page) if block[1] == "python"]


def _name(page):
    return page.relative_to(ROOT).as_posix()


RUNNABLE = [page for page in PAGES if any(b[3] is None for b in _python_blocks(page))]


def test_the_pages_are_found():
    names = [_name(page) for page in RUNNABLE]
    assert "README.md" in names and "docs/losses.md" in names, names


def test_python_fences_are_spelled_python():
    """A `py`/`Python`/`python3` fence would escape this test: use ```python."""
    odd = [
        f"{_name(page)}:{line}: ```{info}"
        for page in PAGES
        for line, info, _, _ in _blocks(page)
        if info.split(" ")[0].lower().startswith("py") and info != "python"
    ]
    assert not odd, "\n".join(odd)


def _other_library(reason):
    prefix = "other library: "
    return reason[len(prefix) :] if reason and reason.startswith(prefix) else None


def test_no_run_blocks_are_rare():
    skipped = [
        f"{_name(page)}:{line} ({reason})"
        for page in PAGES
        for line, _, _, reason in _python_blocks(page)
        if reason is not None and _other_library(reason) is None
    ]
    assert len(skipped) <= MAX_NO_RUN, "\n".join(skipped)


def test_other_library_blocks_are_that_librarys_code():
    wrong = []
    for page in PAGES:
        for line, _, code, reason in _python_blocks(page):
            name = _other_library(reason)
            if name is None:
                continue
            imports = re.search(rf"^\s*(import|from) {name}\b", code, re.M)
            if name == "keras_contrastive" or not imports:
                wrong.append(f"{_name(page)}:{line}: does not import {name}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("page", RUNNABLE, ids=_name)
def test_page_code_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    ran = 0
    try:
        for line, _, code, no_run in _python_blocks(page):
            if no_run is not None:
                continue
            # Line numbers of tracebacks are the page's.
            source = "\n" * line + code
            exec(compile(source, f"{_name(page)}", "exec"), namespace)
            ran += 1
    finally:
        keras.config.set_dtype_policy("float32")
        keras.backend.clear_session()
    assert ran > 0
