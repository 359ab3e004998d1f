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


def test_loss_benchmark_records_render_as_a_table():
    stamp = {"command": "KERAS_BACKEND=jax python benchmarks/losses.py --json x"}
    stamp.update(machine="a CPU, 2 cores", date="2026-12-02")
    shape = {"pairs": 1024, "dim": 128, "queue": 16384, "block": 256}
    records = [
        {"loss": "NTXent", "ms": 12.5, "vs_floor": 1.234, "vs_floor_best": 1.1},
        {"memory": "dense", "peak_mib": 287.0, "memory_pairs": 4096},
        {"memory": "streaming, block 256", "peak_mib": 47.0, "memory_pairs": 4096},
    ]
    records = [{"backend": "jax", **shape, **r, **stamp} for r in records]
    text = "\n".join(_renderer()._losses(records))
    assert "| NTXent | 12.50 | 1.23 | 1.10 |" in text
    assert "dense: 287 MiB; streaming, block 256: 47 MiB" in text
    assert stamp["command"] in text and "a CPU, 2 cores" in text
