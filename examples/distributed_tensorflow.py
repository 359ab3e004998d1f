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
2. builds a small CNN encoder whose batch norms are synchronised
   (`keras_contrastive.distribute.synchronize_batch_norm`: each replica normalises
   with the statistics of the global batch; `--local-batch-norm` keeps
   per-replica statistics), inside the strategy's scope;
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
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"  # Read when Keras is first imported.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if importlib.util.find_spec("keras_contrastive") is None:
    sys.path.insert(0, ROOT)  # Run from a checkout without `pip install -e .`.

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from simclr_demo import make_encoder  # noqa: E402

from keras_contrastive.datasets import load_cifar10_sample  # noqa: E402
from keras_contrastive.distribute import (  # noqa: E402
    scaled_learning_rate,
    synchronize_batch_norm,
)
from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter  # noqa: E402
from keras_contrastive.models import SimCLR  # noqa: E402
from keras_contrastive.optimizers import LARS, WarmupCosineDecay  # noqa: E402


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
        help="split the CPU into N logical devices (one host, smoke runs)",
    )
    parser.add_argument("--tpu", default=None, help="TPU name, address or 'local'")
    parser.add_argument(
        "--local-batch-norm",
        action="store_true",
        help="per-replica batch-norm statistics (no synchronisation)",
    )
    parser.add_argument("--output", default=None, help="save the encoder (.keras)")
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


def load_images(args):
    """The sample, a whole number of global batches (partial ones do not split)."""
    (images, _), _ = load_cifar10_sample(test_fraction=0.0)
    images = images[: args.limit]
    usable = len(images) // args.global_batch_size * args.global_batch_size
    if usable == 0:
        raise SystemExit(
            f"--global-batch-size {args.global_batch_size} exceeds the "
            f"{len(images)} images."
        )
    # float32, not uint8: Keras 3.15 all-reduces the first batch (to build the
    # model) and MultiWorkerMirroredStrategy's collectives have no uint8 kernel.
    return images[:usable].astype("float32")


def make_model(args, steps_per_epoch):
    """SimCLR with LARS at the scaled peak rate; call inside the strategy scope."""
    encoder = make_encoder()
    if not args.local_batch_norm:
        encoder = synchronize_batch_norm(encoder)
    model = SimCLR(
        encoder,
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
    strategy = make_strategy(args)
    replicas = strategy.num_replicas_in_sync
    if args.global_batch_size % replicas:
        raise SystemExit(
            f"--global-batch-size {args.global_batch_size} must be a multiple of "
            f"the {replicas} replicas."
        )
    keras.utils.set_random_seed(args.seed)
    x = load_images(args)
    chief = is_chief(strategy)
    with strategy.scope():
        model, peak = make_model(args, len(x) // args.global_batch_size)
    if chief:
        print(
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}: "
            f"{type(strategy).__name__} with {replicas} replica(s); global batch "
            f"{args.global_batch_size} ({args.global_batch_size // replicas} per "
            f"replica); LARS peak learning rate {peak:.4g} ({args.rule} rule); "
            f"batch norm {'per replica' if args.local_batch_norm else 'synchronised'}",
            flush=True,
        )
    start = time.perf_counter()
    history = model.fit(
        x,
        batch_size=args.global_batch_size,
        epochs=args.epochs,
        verbose=2 if chief else 0,
    )
    seconds = time.perf_counter() - start
    if chief:
        steps = args.epochs * (len(x) // args.global_batch_size)
        print(
            f"{steps} steps in {seconds:.1f} s (tracing included); "
            f"final loss {history.history['loss'][-1]:.4f}",
            flush=True,
        )
        if args.output:
            model.encoder.save(args.output)
            print(f"saved the encoder to {args.output}")
    return history.history


if __name__ == "__main__":
    main()
