"""Renders docs/benchmarks.md from the JSON lines in benchmarks/results/.

    python benchmarks/render_docs.py            rewrites docs/benchmarks.md
    python benchmarks/render_docs.py --check    exits 1 if the page is out of date

The figures on that page are the benchmarks' own output (`--json PATH`, see
`_results.py`), grouped by the run that made them, each run with its command,
machine and date; tests/test_benchmarks_page.py fails when the page and the
results differ, so no figure there is typed by hand. To add a run: run a
benchmark with `--json benchmarks/results/<benchmark>.jsonl`, then this script.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
PAGE = os.path.join(os.path.dirname(HERE), "docs", "benchmarks.md")

HEADER = """# Benchmarks

Rendered by `python benchmarks/render_docs.py` from the JSON lines the
benchmarks write (benchmarks/results/); do not edit by hand. Each table is one
run: the command that made it, the machine and the date are under it. Times on
a shared 2-core machine move with its load; accuracies do not.
"""


def load(results_dir=RESULTS):
    """{benchmark file name: [records]} of every .jsonl file, in file order."""
    out = {}
    for name in sorted(os.listdir(results_dir)):
        if name.endswith(".jsonl"):
            with open(os.path.join(results_dir, name)) as handle:
                out[name[: -len(".jsonl")]] = [
                    json.loads(line) for line in handle if line.strip()
                ]
    return out


def _runs(records):
    """Records grouped by run (command and date), in first-seen order."""
    runs = {}
    for record in records:
        runs.setdefault((record["command"], record["date"]), []).append(record)
    return runs.values()


def _stamp(record):
    """Where a record was measured: its command, machine and date."""
    return f"`{record['command']}` on {record['machine']}, {record['date']}"


def _percent(value):
    return f"{100 * value:.2f}%"


def _methods_cifar10(records):
    lines = [
        "## CIFAR-10 recipe: methods side by side (`methods_cifar10.py`)",
        "",
        "10,000 training images of the CIFAR-10 training split (seed 0) and the",
        "next 10,000 as held-out kNN queries (k = 200, t = 0.1), the small 4-block",
        "CNN, batch 256, Adam 1e-3. Step time is the median after compilation;",
        "'vs SimCLR' compares steps of one run only.",
    ]
    for run in _runs(records):
        first = run[0]
        lines += [
            "",
            "| library | method | backend | epochs | training images "
            "| kNN top-1 | random init | ms/step | vs SimCLR |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in run:
            relative = r.get("step_time_vs_simclr")
            lines.append(
                f"| {r['library']} | {r['method']} | {r.get('backend', '')} "
                f"| {r['epochs']} | {r['num_train']:,} | {_percent(r['knn_trained'])} "
                f"| {_percent(r['knn_random_init'])} "
                f"| {1000 * r['step_seconds']:,.0f} "
                f"| {'-' if relative is None else f'{relative:.2f}x'} |"
            )
        notes = [first["note"]] if first.get("note") else []
        if "drop_last" in first:
            kept = "left out" if first["drop_last"] else "trained on"
            notes.append(f"partial last batches {kept}")
        if "color_strength" in first:
            notes.append(f"colour strength {first['color_strength']:g}")
        if first.get("input_norm", "imagenet") != "imagenet":
            notes.append(f"lightly's input {first['input_norm']}")
        lines += [
            "",
            _stamp(first) + (f" ({'; '.join(notes)})" if notes else "") + ".",
        ]
    return lines


def _losses(records):
    lines = [
        "## Contrastive losses against the matmul floor (`losses.py`)",
        "",
        "Forward and backward of each loss divided by the matmul floor measured in",
        "the same process (`sum(Z @ Z.T)` for Z of 2N x d; see the script's",
        "docstring): median of the runs and best of the runs. N pairs, d",
        "dimensions, InfoNCE with a queue of negatives, streaming in row blocks.",
    ]
    for run in _runs(records):
        first = run[0]
        times = [r for r in run if "loss" in r]
        peaks = [r for r in run if "memory" in r]
        lines += [
            "",
            f"N = {first['pairs']:,}, d = {first['dim']}, queue = "
            f"{first['queue']:,}, block = {first['block']}, "
            f"backend {first['backend']}:",
            "",
            "| loss | ms | x floor (median) | x floor (best) |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['loss']} | {r['ms']:.2f} | {r['vs_floor']:.2f} "
            f"| {r['vs_floor_best']:.2f} |"
            for r in times
        ]
        if peaks:
            lines += [
                "",
                f"Peak memory of NT-Xent forward + backward at "
                f"N = {peaks[0]['memory_pairs']:,} pairs: "
                + "; ".join(f"{r['memory']}: {r['peak_mib']:.0f} MiB" for r in peaks)
                + ".",
            ]
        lines += ["", f"{_stamp(first)}."]
    return lines


#: conventions_cifar10.py's switches: (record key, default, label when switched).
_CONVENTIONS = (
    ("views", "per_view", "joint batch norm"),
    ("head_init", "keras", "head init torch"),
    ("encoder_init", "keras", "encoder init torch"),
    ("encoder_bn", "keras", "encoder BN 0.9 / 1e-5"),
    ("adam_epsilon", 1e-7, "Adam epsilon {}"),
    ("drop_last", True, "keep last"),
    ("precise_bn", False, "precise BN"),
    ("precise_bn_random_init", False, "random init too"),
    ("encoder", "small_cnn", "{} encoder"),
    ("learning_rate", 1e-3, "learning rate {}"),
    ("predictor", "mlp", "{} predictor"),
    ("input_norm", "unit", "input {}"),
    ("views_from", "ours", "views from {}"),
    ("moco_negatives", "batch_and_queue", "negatives: the queue only"),
)


def _switches(record):
    labels = [
        label.format(record[key])
        for key, default, label in _CONVENTIONS
        if record.get(key, default) != default
    ]
    if record["method"] == "byol" and record.get("momentum") != 0.99:
        labels.append(f"momentum {record['momentum']}")
    return ", ".join(labels) or "library defaults"


def _conventions_cifar10(records):
    lines = [
        "## Training conventions, one at a time (`conventions_cifar10.py`)",
        "",
        "The CIFAR-10 recipe with one convention switched between the library's",
        "default and PyTorch's (see the script's docstring); kNN top-1 (k as",
        "below, t = 0.1) on the held-out images, mean +- standard deviation over",
        "the seeds, each seed one run (its own initial weights, views and order).",
        "",
        "| method | backend | switches | colour | epochs | images | seeds "
        "| kNN top-1 | random init | gain | effective rank |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups = {}
    for r in records:
        key = (r["method"], r["backend"], _switches(r), r["color_strength"],
               r["epochs"], r["num_images"], r["batch_size"], r["k"])  # fmt: skip
        groups.setdefault(key, []).append(r)
    commands = []
    for (
        method,
        backend,
        switches,
        color,
        epochs,
        images,
        _,
        k,
    ), runs in groups.items():
        trained = [100 * r["knn_trained"] for r in runs]
        gains = [100 * (r["knn_trained"] - r["knn_random_init"]) for r in runs]
        initial = sum(100 * r["knn_random_init"] for r in runs) / len(runs)
        seeds = ", ".join(str(r["seed"]) for r in runs)
        lines.append(
            f"| {method} | {backend} | {switches} | {color} | {epochs} "
            f"| {images:,} (k = {k}) | {seeds} | {_mean_std(trained)} "
            f"| {initial:.2f}% | {_mean_std(gains, '')} | {_ranks(runs)} |"
        )
        for r in runs:
            stamp = _stamp(r)
            if r.get("note"):
                stamp += f" ({r['note']})"
            if stamp not in commands:
                commands.append(stamp)
    lines += ["", "Runs:", ""] + [f"- {stamp}" for stamp in commands]
    return lines


def _ranks(runs):
    """Mean effective rank before -> after training ("" for older records)."""
    if any("effective_rank_trained" not in r for r in runs):
        return ""
    before, after = (
        sum(r[key] for r in runs) / len(runs)
        for key in ("effective_rank_random_init", "effective_rank_trained")
    )
    return f"{before:.1f} -> {after:.1f}"


def _mean_std(values, unit="%"):
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    sign = "+" if not unit and mean > 0 else ""
    if len(values) == 1:  # one seed: no spread to show
        return f"{sign}{mean:.2f}{unit}"
    return f"{sign}{mean:.2f}{unit} +- {std:.2f}"


def _augmentation(records):
    lines = [
        "## The SimCLR augmenter on each backend (`augmentation.py`)",
        "",
        "One view of a batch of 32x32 CIFAR-10 images through",
        "`SimCLRAugmenter(32, blur=False)` (colour strength 0.5) as a training",
        "step runs it (JAX jitted, TensorFlow in a `tf.function`, PyTorch eager),",
        "and lightly's `SimCLRTransform` on the same images one at a time (half",
        "its time for two views); median and best of the repeats, each backend in",
        "its own process of the same run.",
    ]
    for run in _runs(records):
        first = run[0]
        lines += [
            "",
            f"Batch {first['batch_size']}, {first['repeats']} repeats:",
            "",
            "| augmenter | ms (median) | ms (best) | x JAX | x lightly |",
            "|---|---|---|---|---|",
        ]
        for r in run:
            ratios = [
                f"{r[key]:.2f}" if key in r else "" for key in ("vs_jax", "vs_lightly")
            ]
            lines.append(
                f"| {r['kind']} | {r['median_ms']:.1f} | {r['best_ms']:.1f} "
                f"| {' | '.join(ratios)} |"
            )
        lines += ["", f"{_stamp(first)}."]
    return lines


def _simclr_throughput(records):
    lines = [
        "## SimCLR training steps against lightly (`simclr_cifar10.py throughput`)",
        "",
        "Whole steps (both views augmented, encoder forward and backward, Adam) at",
        "32x32; images per second of ours after warm-up, and of lightly's plain",
        "PyTorch loop on the same machine in the same run (its median time between",
        "steps). lightly's DataLoader workers augment up to 4 batches ahead, so",
        "over a few steps its figure leaves most of the augmentation out; runs of",
        "20 steps or more show the steady state. The processor is in the table",
        "because the ratio moves with it: PyTorch's oneDNN kernels gain more from",
        "AVX-512 (Intel Xeon) than XLA:CPU's do. On the Xeon one warm-up step was",
        "too few: our timed ResNet-18 steps took 9.19 s after one, 6.88-7.54 s after",
        "two (`--warmup 2`).",
        "",
        "| encoder | backend | batch | steps | images/s | lightly images/s "
        "| x lightly | processor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    stamps = []
    for r in records:
        peer = (r.get("lightly") or {}).get("images_per_second")
        peer = f"{peer:.1f}" if peer else ""
        ratio = f"{r['vs_lightly']:.2f}" if "vs_lightly" in r else ""
        lines.append(
            f"| {r.get('encoder', 'resnet18')} | {r['backend']} | {r['batch_size']} "
            f"| {r['steps']} | {r['images_per_second']:.1f} | {peer} | {ratio} "
            f"| {_processor(r)} |"
        )
        stamp = _stamp(r)
        if stamp not in stamps:
            stamps.append(stamp)
    lines += ["", "Runs:", ""] + [f"- {stamp}" for stamp in stamps]
    return lines


def _processor(record):
    """The processor's short name from a record's machine ("AMD EPYC, 2 cores, ...")."""
    return record.get("machine", "").split(",")[0].replace("(R)", "")


def _torch_convolution(records):
    lines = [
        "## Keras' PyTorch convolutions against plain PyTorch (`torch_convolution.py`)",
        "",
        "One training-mode forward and backward pass of the encoder on a batch of",
        "32x32 images: Keras' own PyTorch `conv` and `max_pool` (`keras`, copies",
        "of each activation to channels-first and back), the same encoder inside",
        "`channels_last_convolutions()` (`channels_last`), inside that and",
        "`fused_batch_normalization()` as the library's steps run it now",
        "(`fused_batch_norm`; runs before it have no such row), and the same",
        "architecture in torch.nn (`pytorch`); the ways timed in turn within",
        "each repeat, ratio = median of the per-repeat ratios to PyTorch.",
    ]
    for run in _runs(records):
        first = run[0]
        lines += [
            "",
            f"{first['encoder']}, batch {first['batch_size']}, "
            f"{first['repeats']} repeats:",
            "",
            "| way | s (median) | s (best) | x PyTorch |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['way']} | {r['median_s']:.3f} | {r['best_s']:.3f} "
            f"| {r['vs_pytorch']:.2f} |"
            for r in run
        ]
        lines += ["", f"{_stamp(first)}."]
    return lines


RENDERERS = {
    "augmentation": _augmentation,
    "torch_convolution": _torch_convolution,
    "simclr_throughput": _simclr_throughput,
    "methods_cifar10": _methods_cifar10,
    "losses": _losses,
    "conventions_cifar10": _conventions_cifar10,
}


def render(results_dir=RESULTS):
    lines = [HEADER.rstrip()]
    for name, records in load(results_dir).items():
        if name not in RENDERERS:
            raise ValueError(f"no renderer for benchmarks/results/{name}.jsonl")
        lines += [""] + RENDERERS[name](records)
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    page = render()
    if args.check:
        with open(PAGE) as handle:
            return 0 if handle.read() == page else 1
    with open(PAGE, "w") as handle:
        handle.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
