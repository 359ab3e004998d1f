"""Benchmark results as JSON lines that say how and where they were measured.

Every record a benchmark writes with `--json PATH` gets the command that ran it
(`KERAS_BACKEND=... python benchmarks/<script>.py <arguments>`) and the machine
(CPU model, core count, accelerator if Keras sees one, date), so that the
figures of docs/benchmarks.md, rendered from such files by `render_docs.py`,
carry their provenance instead of being typed by hand.
"""

import datetime
import json
import os
import platform
import sys


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _accelerators():
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return sorted({d.device_kind for d in jax.devices() if d.platform != "cpu"})
    if keras.backend.backend() == "torch":
        import torch

        if torch.cuda.is_available():
            return [torch.cuda.get_device_name(0)]
        return []
    import tensorflow as tf

    return [d.name for d in tf.config.list_physical_devices("GPU")]


def provenance(argv=None):
    """{"command": ..., "machine": ...} of this process."""
    argv = sys.argv if argv is None else argv
    script = os.path.relpath(os.path.abspath(argv[0]), os.getcwd())
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    machine = f"{_cpu_model()}, {os.cpu_count()} cores"
    accelerators = _accelerators()
    if accelerators:
        machine += ", " + ", ".join(accelerators)
    if hasattr(os, "getloadavg"):
        # Times on a shared machine move with its load: record it beside them.
        machine += f", load average {os.getloadavg()[0]:.1f}"
    return {
        "command": " ".join([f"KERAS_BACKEND={backend} python", script, *argv[1:]]),
        "machine": machine,
        "date": datetime.date.today().isoformat(),
    }


def append_jsonl(path, results, argv=None):
    """Appends `results` (dicts) to `path`, each with this run's provenance."""
    stamp = provenance(argv)
    with open(path, "a") as handle:
        for result in results:
            handle.write(json.dumps({**result, **stamp}) + "\n")
