"""Runs every method on 1 and on 4 (virtual CPU) devices; saves both to an .npz.

Started by tests/distribute/test_equality.py in a fresh process, because the device
count must be set before the backend initialises:

    KERAS_BACKEND=tensorflow python -m tests.distribute.replica_run OUT.npz
    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=4 \\
        python -m tests.distribute.replica_run OUT.npz

TensorFlow runs the 4-device case under `MirroredStrategy` (4 logical CPUs, one
replica each, so each step sees 2 of the 8 rows); JAX under
`keras.distribution.DataParallel` (the step sees the batch sharded over 4 devices).
Every run starts from the same weights and data; the test compares the results.
"""

import contextlib
import os
import sys

import numpy as np

DEVICES = 4
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
if BACKEND == "tensorflow":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * DEVICES
    )

import keras  # noqa: E402
from keras import ops  # noqa: E402

from keras_contrastive import distribute, losses  # noqa: E402
from keras_contrastive.models import ContrastiveModel, MemoryBankModel  # noqa: E402
from tests.methods.harness import METHODS  # noqa: E402
from tests.methods.helpers import linear_encoder, linear_head  # noqa: E402

BATCH = 8  # the global batch: 2 rows per device
VIEW_PAIR_LOSSES = ("nt_xent", "info_nce", "symmetric_info_nce", "binary_nce")
VIEW_PAIR_LOSSES += ("debiased_nt_xent",)
VIEW_PAIR_LOSSES += ("siglip_loss",)
# Streamed in blocks of 3 query rows (a remainder on every replica and on one
# device), the candidates gathered across replicas as on the dense path.
STREAMING_LOSSES = ("nt_xent", "info_nce", "symmetric_info_nce")


class GradientRecorder(keras.optimizers.Optimizer):
    """Sets every variable to its (all-reduced) gradient: one step shows them."""

    def __init__(self):
        super().__init__(learning_rate=1.0, name="gradient_recorder")

    def update_step(self, gradient, variable, learning_rate):
        self.assign(variable, ops.cast(gradient, variable.dtype))


class TwoTower(ContrastiveModel):
    """Two linear towers on the two halves of each row; a view-pair loss."""

    def __init__(self, loss_name, units=4, use_bias=True, block_size=None, **kwargs):
        super().__init__(**kwargs)
        self.loss_fn = getattr(losses, loss_name)
        self.loss_kwargs = {} if block_size is None else {"block_size": block_size}
        self.encoder = keras.layers.Dense(units, use_bias=use_bias, name="tower_a")
        self.tower_b = keras.layers.Dense(units, use_bias=use_bias, name="tower_b")

    def call(self, x, training=False):
        return self.encoder(x[:, :3])

    def forward_pass(self, x, training=False):
        return {"z_a": self.encoder(x[:, :3]), "z_b": self.tower_b(x[:, 3:])}

    def compute_contrastive_loss(self, outputs):
        z_a, z_b = outputs["z_a"], outputs["z_b"]
        return ops.mean(self.loss_fn(z_a, z_b, **self.loss_kwargs))


class TwoTowerLossObject(TwoTower):
    """TwoTower with a Keras loss object, which returns this replica's share."""

    def __init__(self, loss, **kwargs):
        super().__init__("nt_xent", **kwargs)
        self.loss_object = loss

    def compute_contrastive_loss(self, outputs):
        share = self.loss_object(outputs["z_a"], outputs["z_b"])
        return share * distribute.num_replicas()


class LabelledEmbedder(ContrastiveModel):
    """A linear embedding of rows whose last column is the label; a metric loss."""

    def __init__(self, loss, **kwargs):
        super().__init__(**kwargs)
        self.loss_object = loss
        self.encoder = keras.layers.Dense(4, name="embedding")

    def call(self, x, training=False):
        return self.encoder(x[:, :-1])

    def forward_pass(self, x, training=False):
        labels = ops.cast(x[:, -1], "int32")
        return {"embeddings": self.encoder(x[:, :-1]), "labels": labels}

    def compute_contrastive_loss(self, outputs):
        # A Keras loss object returns this replica's share of the global mean;
        # the step wants the replica's own mean (it divides by the replica count).
        share = self.loss_object(outputs["labels"], outputs["embeddings"])
        return share * distribute.num_replicas()

    def compute_contrastive_stats(self, outputs):
        zero = ops.zeros(())
        return {"contrastive_accuracy": zero, "embedding_std": zero}


LABEL_LOSSES = {
    "supervised_contrastive": lambda: losses.SupervisedContrastive(temperature=0.5),
    "triplet_all": lambda: losses.TripletLoss(margin=1.0, mining="all"),
    "triplet_semi_hard": lambda: losses.TripletLoss(margin=1.0, mining="semi-hard"),
    "triplet_hard": lambda: losses.TripletLoss(margin=1.0, mining="hard"),
    "lifted_structure": lambda: losses.LiftedStructureLoss(margin=1.0),
    "contrastive": lambda: losses.ContrastiveLoss(margin=1.0),
}


def images(n, rng):
    return rng.uniform(0, 255, (n, 2, 2, 1)).astype("float32")


def cases(rng):
    """name -> (model factory, x, optimizer factory, epochs, state to compare)."""
    rows = rng.normal(size=(BATCH, 6)).astype("float32")
    x = images(3 * BATCH, rng)  # 3 steps
    ids = np.arange(3 * BATCH, dtype="int32")
    identity = keras.layers.Identity

    def sgd():
        return keras.optimizers.SGD(0.5)

    table = {
        f"two_tower/{name}": (lambda name=name: TwoTower(name), rows, GradientRecorder)
        for name in VIEW_PAIR_LOSSES
    }
    for name in STREAMING_LOSSES:
        table[f"two_tower/{name}_streaming"] = (
            lambda name=name: TwoTower(name, block_size=3),
            rows,
            GradientRecorder,
        )
    # Barlow Twins standardises every feature over the global batch, so a tower's
    # bias has a zero gradient in theory (pure round-off): its towers have none.
    # D = 20 > 2N takes the N x N Gram route on one device.
    for suffix, units in (("", 4), ("_wide", 20)):
        table[f"two_tower/barlow_twins_loss{suffix}"] = (
            lambda units=units: TwoTower("barlow_twins_loss", units, use_bias=False),
            rows,
            GradientRecorder,
        )
    table["loss_object/barlow_twins"] = (
        lambda: TwoTowerLossObject(losses.BarlowTwinsLoss(), use_bias=False),
        rows,
        GradientRecorder,
    )
    table["loss_object/siglip"] = (
        lambda: TwoTowerLossObject(losses.SigLIPLoss()),
        rows,
        GradientRecorder,
    )
    # Labels chosen so that the replicas (2 rows each) hold different numbers of
    # positive pairs: their shares of the mean are unequal.
    labelled = np.concatenate(
        [rows[:, :4], np.array([0, 0, 1, 2, 0, 1, 1, 0], "float32")[:, None]], axis=1
    )
    for name, loss in LABEL_LOSSES.items():
        table[f"labels/{name}"] = (
            lambda loss=loss: LabelledEmbedder(loss()),
            labelled,
            GradientRecorder,
        )
    # Every method of the harness (tests/methods/harness.py) that runs distributed:
    # linear networks, deterministic views, 3 SGD steps, every variable compared.
    for name, method in METHODS.items():
        if method.distributed:
            table[f"method/{name}"] = (
                lambda method=method: method.model(identity(), linear=True),
                method.data(3 * BATCH, size=2, channels=1, dtype="float32"),
                sgd,
            )
    # CLIP: one step recording every gradient (towers, projections, the logit
    # scale and SigLIP's bias).
    for name in ("clip", "clip_sigmoid"):
        table[f"gradients/{name}"] = (
            lambda name=name: METHODS[name].model(identity(), linear=True),
            METHODS[name].data(BATCH, size=2, channels=1, dtype="float32"),
            GradientRecorder,
        )
    table["memory_bank/nce"] = (
        lambda: MemoryBankModel(
            linear_encoder(),
            len(ids),
            projection_head=linear_head(3),
            augmenter=identity(),
            num_negatives=16,
            loss="nce",
        ),
        {"ids": ids, "images": x},
        sgd,
    )
    return table


_STRATEGY = []


def distributed_scope():
    if BACKEND == "tensorflow":
        # One strategy for every case: collective-op keys clash between strategies
        # created one after another in the same process.
        if not _STRATEGY:
            devices = [f"/cpu:{i}" for i in range(DEVICES)]
            _STRATEGY.append(tf.distribute.MirroredStrategy(devices))
        return _STRATEGY[0].scope()
    if BACKEND == "jax":
        import jax

        assert len(jax.devices()) == DEVICES, jax.devices()
        distribution = keras.distribution.DataParallel(devices=jax.devices())
        return distribution.scope()
    raise SystemExit(f"no multi-device run on {BACKEND}")


def run(factory, x, optimizer, weights, scope):
    with scope:
        model = factory()
        model.build_for(keras.tree.map_structure(lambda a: a[:BATCH], x))
        # Every variable, seed-generator states included (get_weights skips them).
        if weights is not None:
            for variable, value in zip(model.variables, weights):
                variable.assign(value)
        start = [np.asarray(ops.convert_to_numpy(v)) for v in model.variables]
        model.compile(optimizer=optimizer())
        history = model.fit(x, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    # Keyed by position: the two runs' layers get different unique names.
    state = {
        f"{i:02d}:{v.name}": np.asarray(ops.convert_to_numpy(v))
        for i, v in enumerate(model.variables)
    }
    state["logged_loss"] = np.asarray(history.history["loss"][-1])
    state["devices"] = np.asarray(devices_used(model))
    return start, state


def devices_used(model):
    """How many devices the run really used (proof that it was distributed)."""
    if BACKEND == "tensorflow":
        return model.distribute_strategy.num_replicas_in_sync
    return len(model.trainable_variables[0].value.sharding.device_set)


def replica_views(rng):
    """SimCLR views of one image repeated 8 times, made on 4 TF replicas (2 each).

    Each replica must draw its own crops and colours: with the replicated seed
    generator alone, every replica would repeat replica 0's two views.
    """
    from keras_contrastive.layers import SimCLRAugmenter

    image = rng.uniform(0, 255, (1, 8, 8, 3)).astype("float32")
    images = np.repeat(image, BATCH, axis=0)
    strategy = _STRATEGY[0]
    with strategy.scope():
        augmenter = SimCLRAugmenter((8, 8), blur=False, seed=3)
    per_replica = BATCH // DEVICES
    local = strategy.experimental_distribute_values_from_function(
        lambda context: images[
            context.replica_id_in_sync_group * per_replica : (
                context.replica_id_in_sync_group + 1
            )
            * per_replica
        ]
    )
    views = strategy.run(
        tf.function(lambda x: augmenter(x, training=True)), args=(local,)
    )
    return np.concatenate(
        [v.numpy() for v in strategy.experimental_local_results(views)]
    )


def run_cases(cases):
    """Each case on one device, then on 4 from the same start: `case|run|name`."""
    out = {}
    for name, (factory, x, optimizer) in cases.items():
        start, single = run(factory, x, optimizer, None, contextlib.nullcontext())
        _, multi = run(factory, x, optimizer, start, distributed_scope())
        for key, value in single.items():
            out[f"{name}|single|{key}"] = value
        for key, value in multi.items():
            out[f"{name}|multi|{key}"] = value
        print(name, "done", flush=True)
    return out


def main(path):
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    out = run_cases(cases(rng))
    if BACKEND == "tensorflow":
        out["augmentation|multi|views"] = replica_views(rng)
    np.savez(path, **out)


if __name__ == "__main__":
    main(sys.argv[1])
