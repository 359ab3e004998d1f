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
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if importlib.util.find_spec("keras_contrastive") is None:
    sys.path.insert(0, ROOT)  # Run from a checkout without `pip install -e .`.


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--global-batch-size", type=int, default=256)
    parser.add_argument("--base-learning-rate", type=float, default=0.3)
    parser.add_argument("--rule", choices=("linear", "sqrt"), default="linear")
    parser.add_argument("--temperature", type=float, default=0.2)
    parser.add_argument("--limit", type=int, default=None, help="use N images")
    parser.add_argument("--seed", type=int, default=0)
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
    parser.add_argument("--output", default=None, help="save the encoder (.keras)")
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


def load_shard(args, process_id, num_processes):
    """This process's rows of the sample, a whole number of global batches."""
    from keras_contrastive.datasets import load_cifar10_sample

    (images, _), _ = load_cifar10_sample(test_fraction=0.0)
    images = images[: args.limit]
    # Every step needs a full global batch: a partial one would not split evenly.
    usable = len(images) // args.global_batch_size * args.global_batch_size
    if usable == 0:
        raise SystemExit(
            f"--global-batch-size {args.global_batch_size} exceeds the "
            f"{len(images)} images."
        )
    return images[:usable][process_id::num_processes]


def make_model(args, steps_per_epoch):
    """SimCLR with LARS at the scaled peak rate, warmup then cosine decay."""
    from simclr_demo import make_encoder

    from keras_contrastive.distribute import scaled_learning_rate
    from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter
    from keras_contrastive.models import SimCLR
    from keras_contrastive.optimizers import LARS, WarmupCosineDecay

    model = SimCLR(
        make_encoder(),
        projection_head=ProjectionHead(hidden_dims=(128,), output_dim=64),
        augmenter=SimCLRAugmenter((32, 32), crop_scale=(0.2, 1.0), blur=False),
        temperature=args.temperature,
    )
    peak = scaled_learning_rate(
        args.base_learning_rate, args.global_batch_size, rule=args.rule
    )
    total = args.epochs * steps_per_epoch
    warmup = total // 10
    schedule = WarmupCosineDecay(peak, warmup_steps=warmup, decay_steps=total - warmup)
    model.compile(optimizer=LARS(schedule, momentum=0.9, weight_decay=1e-6))
    return model, peak


def main(argv=None):
    args = parse_args(argv)
    jax = start_jax(args)
    import keras

    process, processes = jax.process_index(), jax.process_count()
    if args.global_batch_size % jax.device_count():
        raise SystemExit(
            f"--global-batch-size {args.global_batch_size} must be a multiple of "
            f"the {jax.device_count()} devices."
        )
    # All devices of all processes; the step is compiled for the global batch.
    # Each process feeds its own shard of the arrays (load_shard), so Keras must
    # not shard again (it only knows how to shard a tf.data.Dataset).
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=jax.devices(), auto_shard_dataset=False)
    )
    keras.utils.set_random_seed(args.seed)  # same initial weights everywhere
    x = load_shard(args, process, processes)
    local_batch = args.global_batch_size // processes
    model, peak = make_model(args, len(x) // local_batch)
    if process == 0:
        print(
            f"JAX {jax.__version__}, Keras {keras.__version__}: {processes} "
            f"process(es), {jax.device_count()} {jax.devices()[0].platform} "
            f"device(s); global batch {args.global_batch_size} ({local_batch} per "
            f"process); LARS peak learning rate {peak:.4g} ({args.rule} rule)",
            flush=True,
        )
    start = time.perf_counter()
    history = model.fit(
        x,
        batch_size=local_batch,
        epochs=args.epochs,
        verbose=2 if process == 0 else 0,
    )
    seconds = time.perf_counter() - start
    if process == 0:
        steps = args.epochs * (len(x) // local_batch)
        print(
            f"{steps} steps in {seconds:.1f} s (compilation included); "
            f"final loss {history.history['loss'][-1]:.4f}",
            flush=True,
        )
        if args.output:
            model.encoder.save(args.output)
            print(f"saved the encoder to {args.output}")
    return history.history


if __name__ == "__main__":
    main()
