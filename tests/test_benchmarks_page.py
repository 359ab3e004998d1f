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


def test_convention_runs_render_as_mean_and_spread_per_configuration():
    base = {"method": "simclr", "backend": "tensorflow", "views": "per_view",
            "head_init": "keras", "encoder_init": "keras", "encoder_bn": "keras",
            "adam_epsilon": 1e-7, "momentum": 0.99, "precise_bn": False,
            "drop_last": True, "color_strength": 0.5, "epochs": 20,
            "batch_size": 256, "num_images": 10000, "k": 200,
            "machine": "a CPU, 2 cores", "date": "2026-12-02"}  # fmt: skip
    command = "KERAS_BACKEND=tensorflow python benchmarks/conventions_cifar10.py"
    records = [
        {**base, "seed": 0, "knn_random_init": 0.36, "knn_trained": 0.47},
        {**base, "seed": 1, "knn_random_init": 0.38, "knn_trained": 0.48},
        {**base, "seed": 0, "head_init": "torch", "encoder_init": "torch",
         "drop_last": False, "knn_random_init": 0.35, "knn_trained": 0.50},
        {**base, "seed": 0, "views_from": "lightly-crop", "input_norm": "imagenet",
         "knn_random_init": 0.35, "knn_trained": 0.49},
    ]  # fmt: skip
    for r in records:
        r["command"] = f"{command} --seeds {r['seed']}"
    text = "\n".join(_renderer()._conventions_cifar10(records))
    # Seeds 0 and 1: 47 and 48 -> 47.50 +- 0.50 (population std), gains 11 and
    # 10 -> +10.50 +- 0.50, random init 37.00%.
    row = ("| simclr | tensorflow | library defaults | 0.5 | 20 | 10,000 (k = 200) "
           "| 0, 1 | 47.50% +- 0.50 | 37.00% | +10.50 +- 0.50 |")  # fmt: skip
    assert row in text, text
    assert "| head init torch, encoder init torch, keep last |" in text
    assert "| 50.00% | 35.00% | +15.00 |" in text  # one seed: no spread
    assert "| input imagenet, views from lightly-crop |" in text
    assert f"`{command} --seeds 1` on a CPU, 2 cores, 2026-12-02" in text


def test_augmenter_timings_render_with_their_ratios():
    stamp = {"command": "KERAS_BACKEND=tensorflow python benchmarks/augmentation.py"}
    stamp.update(machine="a CPU, 2 cores", date="2026-12-03")
    shape = {"benchmark": "augmentation", "batch_size": 256, "repeats": 20}
    records = [
        {"kind": "jax", "median_ms": 20.0, "best_ms": 18.0, "vs_jax": 1.0,
         "vs_lightly": 0.1},
        {"kind": "lightly", "median_ms": 200.0, "best_ms": 190.0, "vs_jax": 10.0,
         "vs_lightly": 1.0},
    ]  # fmt: skip
    text = "\n".join(
        _renderer()._augmentation([{**shape, **r, **stamp} for r in records])
    )
    assert "| jax | 20.0 | 18.0 | 1.00 | 0.10 |" in text
    assert "| lightly | 200.0 | 190.0 | 10.00 | 1.00 |" in text
    assert stamp["command"] in text


def test_throughput_records_render_beside_lightly():
    stamp = {"command": "KERAS_BACKEND=torch python benchmarks/simclr_cifar10.py"}
    stamp.update(machine="a CPU, 2 cores", date="2026-12-03")
    records = [
        {"backend": "torch", "encoder": "small_cnn", "batch_size": 256, "steps": 5,
         "images_per_second": 500.0, "lightly": {"images_per_second": 400.0},
         "vs_lightly": 1.25},
        {"backend": "jax", "batch_size": 256, "steps": 3,
         "images_per_second": 6.0, "lightly": None},
    ]  # fmt: skip
    text = "\n".join(_renderer()._simclr_throughput([{**r, **stamp} for r in records]))
    assert "| small_cnn | torch | 256 | 5 | 500.0 | 400.0 | 1.25 |" in text
    # Records from before `--encoder` were ResNet-18 steps.
    assert "| resnet18 | jax | 256 | 3 | 6.0 |  |  |" in text


def test_convolution_timings_render_against_pytorch():
    stamp = {"command": "KERAS_BACKEND=torch python benchmarks/torch_convolution.py"}
    stamp.update(machine="a CPU, 2 cores", date="2026-12-03")
    shape = {
        "benchmark": "torch_convolution",
        "encoder": "resnet18",
        "batch_size": 256,
        "repeats": 5,
    }
    records = [
        {"way": "keras", "median_s": 15.9, "best_s": 15.8, "vs_pytorch": 1.45},
        {"way": "pytorch", "median_s": 10.97, "best_s": 10.75, "vs_pytorch": 1.0},
    ]  # fmt: skip
    text = "\n".join(
        _renderer()._torch_convolution([{**shape, **r, **stamp} for r in records])
    )
    assert "resnet18, batch 256, 5 repeats:" in text
    assert "| keras | 15.900 | 15.800 | 1.45 |" in text
    assert "| pytorch | 10.970 | 10.750 | 1.00 |" in text
    assert stamp["command"] in text
