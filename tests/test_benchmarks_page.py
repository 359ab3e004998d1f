"""docs/benchmarks.md is what benchmarks/render_docs.py makes of benchmarks/results/."""

import importlib.util
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _renderer():
    path = ROOT / "benchmarks" / "render_docs.py"
    spec = importlib.util.spec_from_file_location("render_docs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_page_is_rendered_from_the_results():
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    assert page == _renderer().render(), (
        "docs/benchmarks.md differs from benchmarks/results/: run "
        "python benchmarks/render_docs.py"
    )


def test_every_result_says_how_and_where_it_was_measured():
    for path in (ROOT / "benchmarks" / "results").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            assert record["command"].startswith("KERAS_BACKEND="), path
            assert record["machine"] and record["date"], path


def test_a_figure_in_the_results_appears_on_the_page():
    # Independent of the renderer's code: the first record's kNN figure, as a
    # percentage with two decimals, is on the page.
    path = ROOT / "benchmarks" / "results" / "methods_cifar10.jsonl"
    first = json.loads(path.read_text().splitlines()[0])
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    assert f"{100 * first['knn_trained']:.2f}%" in page
    assert first["command"] in page
