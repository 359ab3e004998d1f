"""Runs the tutorials of examples/tutorials/ and renders them, outputs included,
into docs/tutorials/.

    python docs/_ext/tutorials.py                  every tutorial, at size "docs"
    python docs/_ext/tutorials.py simclr moco      some of them
    KERAS_BACKEND=torch python docs/_ext/tutorials.py --size test simclr

A tutorial is a Python script in jupytext's "percent" format: `# %% [markdown]`
opens a text cell (its lines are Markdown behind `# `), `# %%` a code cell. It
runs as a plain script (`python examples/tutorials/simclr.py [--full]`), opens as
a notebook with jupytext, and is run here cell by cell in one namespace: each
cell's printed output and each figure it shows (`plt.show()`) go under the cell
on the rendered page. Every tutorial reads its size from `--full` or the
`KC_TUTORIAL_SIZE` environment variable:

- "test": seconds; tests/test_tutorials.py runs every tutorial so on every backend;
- "docs": minutes on 2 CPU cores; the size of the rendered pages;
- "full" (`--full`): the published recipe, for a user with the time or a GPU.

tests/test_tutorials.py also fails when a page's code differs from its script's,
so a page cannot show code that no longer runs.
"""

import argparse
import contextlib
import datetime
import io
import os
import pathlib
import re
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "examples" / "tutorials"
PAGES = ROOT / "docs" / "tutorials"
SIZES = ("test", "docs", "full")

MARKER = re.compile(r"^# %%(?P<rest>.*)$", re.M)


def tutorial_names():
    """The tutorials' names (their file stems), sorted."""
    return sorted(p.stem for p in TUTORIALS.glob("*.py") if not p.stem.startswith("_"))


def cells(path):
    """[(kind, source)] of a percent-format script; kind is "markdown" or "code".

    Markdown cells lose their `# ` prefixes; text before the first marker is
    dropped (there is none in our tutorials).
    """
    text = pathlib.Path(path).read_text()
    markers = list(MARKER.finditer(text))
    out = []
    for i, marker in enumerate(markers):
        end = markers[i + 1].start() if i + 1 < len(markers) else len(text)
        body = text[marker.end() + 1 : end].strip("\n")
        if "[markdown]" in marker.group("rest"):
            lines = [re.sub(r"^# ?", "", line) for line in body.splitlines()]
            out.append(("markdown", "\n".join(lines)))
        elif body.strip():
            out.append(("code", body))
    return out


class _Figures:
    """Collects the figures a cell shows: `plt.show()` saves and closes them."""

    def __init__(self, save):
        self.save, self.shown = save, []

    def __enter__(self):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        def show(*args, **kwargs):
            for number in plt.get_fignums():
                self.shown.append(self.save(plt.figure(number)))
            plt.close("all")

        # A plain function: pyplot inspects `show`'s signature when it first
        # switches backends, which a bound method does not support.
        self._plt, self._show = plt, plt.show
        plt.show = show
        return self

    def __exit__(self, *exc):
        self._plt.show = self._show
        self._plt.close("all")


def run(name, size="test", save_figure=None):
    """Runs tutorial `name` at `size` cell by cell.

    Returns [(kind, source, stdout, figures)] per cell, figures being whatever
    `save_figure(figure)` returned for each figure the cell showed (by default
    nothing is saved). Raises the cell's own exception, with the cell's number.
    """
    if size not in SIZES:
        raise ValueError(f"`size` must be one of {SIZES}; received {size!r}")
    path = TUTORIALS / f"{name}.py"
    save_figure = save_figure or (lambda figure: None)
    previous = os.environ.get("KC_TUTORIAL_SIZE")
    os.environ["KC_TUTORIAL_SIZE"] = size
    namespace = {"__name__": "__main__", "__file__": str(path)}
    results = []
    try:
        for index, (kind, source) in enumerate(cells(path)):
            if kind == "markdown":
                results.append((kind, source, "", []))
                continue
            stdout = io.StringIO()
            with _Figures(save_figure) as figures, contextlib.redirect_stdout(stdout):
                code = compile(source, f"{path.name} (cell {index})", "exec")
                exec(code, namespace)
            results.append((kind, source, stdout.getvalue(), figures.shown))
    finally:
        if previous is None:
            os.environ.pop("KC_TUTORIAL_SIZE", None)
        else:
            os.environ["KC_TUTORIAL_SIZE"] = previous
    return results


def _clean(output):
    """Printed output as a page shows it: a line rewritten after a carriage
    return (a progress bar) shows its last state."""
    lines = [line.rsplit("\r", 1)[-1] for line in output.splitlines()]
    return "\n".join(lines).strip("\n")


def render(name, size="docs"):
    """Runs tutorial `name` and writes docs/tutorials/<name>.md (and its figures
    as docs/tutorials/images/<name>_<k>.png). Returns the run time in seconds."""
    import keras

    images = PAGES / "images"
    images.mkdir(parents=True, exist_ok=True)
    for old in images.glob(f"{name}_*.png"):
        old.unlink()
    saved = []

    def save_figure(figure):
        file = images / f"{name}_{len(saved) + 1}.png"
        figure.savefig(file, dpi=100, bbox_inches="tight")
        saved.append(file)
        return file.relative_to(PAGES).as_posix()

    # Whatever the tutorial writes (a saved model) goes to a scratch folder.
    start, cwd = time.perf_counter(), os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        try:
            results = run(name, size, save_figure)
        finally:
            os.chdir(cwd)
    seconds = time.perf_counter() - start
    backend = keras.backend.backend()
    parts = []
    for kind, source, stdout, figures in results:
        if kind == "markdown":
            parts.append(source)
            continue
        parts.append(f"```python\n{source}\n```")
        output = _clean(stdout)
        if output:
            parts.append(f"```text\n{output}\n```")
        parts.extend(f"![figure]({figure})" for figure in figures)
    command = f"KERAS_BACKEND={backend} python docs/_ext/tutorials.py {name}"
    if size != "docs":
        command += f" --size {size}"
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _results import _cpu_model

    cpu = _cpu_model()
    parts.append(
        f"---\n\n*Rendered from `examples/tutorials/{name}.py` by `{command}` "
        f'(size "{size}") in {seconds:.0f} s on {cpu}, {os.cpu_count()} cores, '
        f"Keras {keras.__version__}, {datetime.date.today().isoformat()}. "
        f"Run it yourself with `python examples/tutorials/{name}.py` "
        "(add `--full` for the full-size recipe).*"
    )
    (PAGES / f"{name}.md").write_text("\n\n".join(parts) + "\n")
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="tutorials to render (all if none)")
    parser.add_argument("--size", default="docs", choices=SIZES)
    args = parser.parse_args(argv)
    for name in args.names or tutorial_names():
        if name not in tutorial_names():
            parser.error(f"no tutorial {name!r}; there are {tutorial_names()}")
        seconds = render(name, args.size)
        print(f"rendered docs/tutorials/{name}.md in {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT))
    main()
