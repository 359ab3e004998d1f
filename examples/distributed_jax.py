"""SimCLR on several devices and hosts with JAX and `keras.distribution.DataParallel`.

    # Smoke run on one CPU host: 4 simulated devices, 512 images, 1 epoch
    python examples/distributed_jax.py --virtual-devices 4 --epochs 1 --limit 512

    # Two hosts, one process each (process 0's host is the coordinator)
    python examples/distributed_jax.py --coordinator-address 10.0.0.1:1234 \\
        --num-processes 2 --process-id 0            # on host 0
    python examples/distributed_jax.py --coordinator-address 10.0.0.1:1234 \\
        --num-processes 2 --process-id 1            # on host 1

    # Cloud TPU pod slice, SLURM or Open MPI: JAX reads the cluster itself
    python examples/distributed_jax.py --auto-cluster

The three flags default to the variables JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES
and JAX_PROCESS_ID. One process per host drives every accelerator of its host.

What it does (see docs/distributed.md):

1. starts JAX's multi-process runtime (`jax.distributed.initialize`) when a
   cluster is given, then puts every device of every process in one
   `keras.distribution.DataParallel` mesh: weights replicated, batches sharded;
2. loads the bundled CIFAR-10 sample (the same images in every process, the same
   seed so that every process starts from the same weights) and keeps this
   process's shard, rows `process_id::num_processes`;
3. trains SimCLR with LARS at `scaled_learning_rate(base, global_batch_size)`
   (SimCLR's linear rule; `--rule sqrt` for the square-root one) with warmup and
   cosine decay. Each process feeds `global_batch_size / num_processes` rows per
   step; Keras assembles the global batch and XLA shards the step over all
   devices, so batch norm and the NT-Xent negatives cover the global batch.
"""

import argparse
import importlib.util
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if importlib.util.find_spec("keras_contrastive") is None:
    sys.path.insert(0, ROOT)  # Run from a checkout without `pip install -e .`.

from _distributed_common import (  # noqa: E402
    add_recipe_arguments,
    check_divisible,
    fit_and_report,
    load_global_batches,
    make_simclr,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_recipe_arguments(parser)
    parser.add_argument(
        "--virtual-devices",
        type=int,
        default=None,
        help="simulate N devices on the CPU (one host, smoke runs)",
    )
    parser.add_argument(
        "--coordinator-address", default=os.environ.get("JAX_COORDINATOR_ADDRESS")
    )
    parser.add_argument(
        "--num-processes", type=int, default=_env_int("JAX_NUM_PROCESSES")
    )
    parser.add_argument("--process-id", type=int, default=_env_int("JAX_PROCESS_ID"))
    parser.add_argument(
        "--auto-cluster",
        action="store_true",
        help="jax.distributed.initialize() with the cluster JAX detects",
    )
    return parser.parse_args(argv)


def _env_int(name):
    value = os.environ.get(name)
    return None if value is None else int(value)


def start_jax(args):
    """Sets the backend and the devices, then starts JAX (once, before Keras)."""
    os.environ["KERAS_BACKEND"] = "jax"
    if args.virtual_devices:
        # Read when JAX starts its CPU backend: must precede `import jax`.
        flag = f"--xla_force_host_platform_device_count={args.virtual_devices}"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}"
    import jax

    if args.auto_cluster:
        jax.distributed.initialize()
    elif args.coordinator_address or (args.num_processes or 1) > 1:
        jax.distributed.initialize(
            coordinator_address=args.coordinator_address,
            num_processes=args.num_processes,
            process_id=args.process_id,
        )
    return jax


def main(argv=None):
    args = parse_args(argv)
    jax = start_jax(args)
    import keras
    from simclr_demo import make_encoder

    process, processes = jax.process_index(), jax.process_count()
    check_divisible(args.global_batch_size, jax.device_count(), "devices")
    # All devices of all processes; the step is compiled for the global batch.
    # Each process feeds its own rows of the arrays, so Keras must not shard
    # again (it only knows how to shard a tf.data.Dataset).
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=jax.devices(), auto_shard_dataset=False)
    )
    keras.utils.set_random_seed(args.seed)  # same initial weights everywhere
    # The same images in every process; this process keeps every processes-th row.
    x = load_global_batches(args)[process::processes]
    local_batch = args.global_batch_size // processes
    model, peak = make_simclr(args, make_encoder(), len(x) // local_batch)
    if process == 0:
        print(
            f"JAX {jax.__version__}, Keras {keras.__version__}: {processes} "
            f"process(es), {jax.device_count()} {jax.devices()[0].platform} "
            f"device(s); global batch {args.global_batch_size} ({local_batch} per "
            f"process); LARS peak learning rate {peak:.4g} ({args.rule} rule)",
            flush=True,
        )
    return fit_and_report(model, x, local_batch, args, leader=process == 0)


if __name__ == "__main__":
    main()
