"""SimCLR on several devices and workers with TensorFlow `tf.distribute` strategies.

    # Smoke run on one CPU host: 4 logical CPU devices, MirroredStrategy
    python examples/distributed_tensorflow.py --virtual-devices 4 --epochs 1 --limit 512

    # One host, all its GPUs: MirroredStrategy
    python examples/distributed_tensorflow.py

    # Several workers: the same command on every host, each with its TF_CONFIG
    TF_CONFIG='{"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
                "task": {"type": "worker", "index": 0}}' \\
        python examples/distributed_tensorflow.py    # index 1 on the second host

    # Cloud TPU (a TPU VM: --tpu local; else the TPU's name or grpc:// address)
    python examples/distributed_tensorflow.py --tpu local

The strategy: `TPUStrategy` with `--tpu`; `MultiWorkerMirroredStrategy` when
TF_CONFIG names more than one worker; `MirroredStrategy` over the local GPUs (or
the `--virtual-devices` logical CPUs) otherwise.

Known limitation: with Keras 3.15 and TensorFlow 2.21, `fit` under
`MultiWorkerMirroredStrategy` fails inside Keras for any model (its per-replica
log reduction, tensorflow/tensorflow#72388; reproduced with two local workers).
The multi-worker path is kept for a fixed Keras; until then use one host or JAX.

What it does (see docs/distributed.md):

1. every worker loads the same bundled CIFAR-10 sample; Keras splits each global
   batch over all replicas of all workers (`--global-batch-size` is the batch of
   one optimizer step, summed over replicas);
2. builds a small CNN encoder and a projection head whose batch norms are
   synchronised (`keras_contrastive.distribute.synchronize_batch_norm` and
   `ProjectionHead(synchronized_batch_norm=True)`: each replica normalises with
   the statistics of the global batch; `--local-batch-norm` keeps per-replica
   statistics), inside the strategy's scope;
3. trains SimCLR with LARS at `scaled_learning_rate(base, global_batch_size)`
   (SimCLR's linear rule; `--rule sqrt` for the square-root one), warmup then
   cosine decay. The NT-Xent negatives cover the global batch: each replica's
   anchors are compared with every replica's views (`distribute.gather`).
"""

import argparse
import importlib.util
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"  # Read when Keras is first imported.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if importlib.util.find_spec("keras_contrastive") is None:
    sys.path.insert(0, ROOT)  # Run from a checkout without `pip install -e .`.

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from _distributed_common import (  # noqa: E402
    add_recipe_arguments,
    check_divisible,
    fit_and_report,
    load_global_batches,
    make_simclr,
)
from simclr_demo import make_encoder  # noqa: E402

from keras_contrastive.distribute import synchronize_batch_norm  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_recipe_arguments(parser)
    parser.add_argument(
        "--virtual-devices",
        type=int,
        default=None,
        help="split the CPU into N logical devices (one host, smoke runs)",
    )
    parser.add_argument("--tpu", default=None, help="TPU name, address or 'local'")
    parser.add_argument(
        "--local-batch-norm",
        action="store_true",
        help="per-replica batch-norm statistics (no synchronisation)",
    )
    return parser.parse_args(argv)


def workers_in_tf_config():
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def make_strategy(args):
    """The strategy for the hardware at hand; created before any other TF op."""
    if args.tpu:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=args.tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if workers_in_tf_config() > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if args.virtual_devices:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.virtual_devices
        )
        devices = [f"/cpu:{i}" for i in range(args.virtual_devices)]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.MirroredStrategy()  # every local GPU, else the CPU


def is_chief(strategy):
    """Whether this worker writes files (the chief, or worker 0 without one)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
    )


def main(argv=None):
    args = parse_args(argv)
    strategy = make_strategy(args)
    replicas = strategy.num_replicas_in_sync
    check_divisible(args.global_batch_size, replicas, "replicas")
    keras.utils.set_random_seed(args.seed)
    # float32, not uint8: Keras 3.15 all-reduces the first batch (to build the
    # model) and MultiWorkerMirroredStrategy's collectives have no uint8 kernel.
    x = load_global_batches(args).astype("float32")
    chief = is_chief(strategy)
    with strategy.scope():
        encoder = make_encoder()
        if not args.local_batch_norm:
            encoder = synchronize_batch_norm(encoder)
        model, peak = make_simclr(
            args,
            encoder,
            len(x) // args.global_batch_size,
            synchronized_batch_norm=not args.local_batch_norm,
        )
    if chief:
        print(
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}: "
            f"{type(strategy).__name__} with {replicas} replica(s); global batch "
            f"{args.global_batch_size} ({args.global_batch_size // replicas} per "
            f"replica); LARS peak learning rate {peak:.4g} ({args.rule} rule); "
            f"batch norm {'per replica' if args.local_batch_norm else 'synchronised'}",
            flush=True,
        )
    return fit_and_report(model, x, args.global_batch_size, args, leader=chief)


if __name__ == "__main__":
    main()
