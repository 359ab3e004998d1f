"""Contrastive pre-training on a real multivariate time series: temporal pairs and CPC.

BasicMotions (UEA archive; bundled with sktime/aeon, read offline by
`keras_contrastive.datasets.load_ucr_uea`): 6-channel accelerometer and gyroscope
recordings of a smart watch, 100 steps each, 4 activities (standing, running,
walking, badminton), 40 training and 40 test series.

One small 1-D convolutional window encoder (windows of 10 steps, one second ->
64 features) is pre-trained without labels on the training series, twice:

- time-contrastive pairs (Sermanet et al. 2018): an anchor window and a window
  starting at most `--max-offset` steps away in the same series are a positive
  pair (`keras_contrastive.datasets.TemporalPairs`), the other pairs of the batch
  negatives, scored by NT-Xent (a 15-line `ContrastiveModel` below);
- Contrastive Predictive Coding (Oord et al. 2018, `keras_contrastive.models.CPC`):
  a GRU over the sequence of window encodings (windows every 5 steps) predicts
  the next `--cpc-steps` encodings.

Downstream task: the activity of each one-second window. The non-overlapping
windows of the training series (with their series' label) are the labelled set,
those of the test series the queries; a kNN vote (k = 5, cosine, t = 0.1) and a
linear probe predict the activity from the raw standardised window, from the
randomly initialised encoder (the initial weights both methods start from) and
from the two pre-trained encoders.

Usage:
    KERAS_BACKEND=jax python examples/timeseries_contrastive.py          # ~1 min
    KERAS_BACKEND=jax python examples/timeseries_contrastive.py --quick  # seconds
"""

import argparse
import time

import keras
import numpy as np
from keras import ops

from keras_contrastive.datasets import TemporalPairs, load_ucr_uea
from keras_contrastive.evaluation import knn_accuracy, linear_probe
from keras_contrastive.layers import ProjectionHead
from keras_contrastive.losses import nt_xent
from keras_contrastive.models import CPC, ContrastiveModel


class TimeContrastive(ContrastiveModel):
    """An anchor window and its temporal neighbour as a positive pair (Sermanet et
    al. 2018), the batch's other windows as negatives, NT-Xent (Chen et al. 2020).

    Takes the `{"anchor", "positive"}` batches of `TemporalPairs`.
    """

    nested_config = ("encoder", "projection_head")
    config_attributes = ("temperature",)

    def __init__(self, encoder, projection_head, temperature=0.1, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.projection_head = projection_head
        self.temperature = temperature

    def forward_pass(self, x, training=False):
        both = ops.concatenate([x["anchor"], x["positive"]], axis=0)
        features = self.encoder(both, training=training)
        z = self.projection_head(features, training=training)
        n = ops.shape(x["anchor"])[0]
        return {"z_a": z[:n], "z_b": z[n:]}

    def compute_contrastive_loss(self, outputs):
        return ops.mean(
            nt_xent(outputs["z_a"], outputs["z_b"], temperature=self.temperature)
        )


def window_encoder(window, channels, seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((window, channels)),
            keras.layers.Conv1D(32, 5, padding="same", activation="relu"),
            keras.layers.Conv1D(64, 5, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
        ],
        name="window_encoder",
    )


def windows(series, window, stride):
    """(n, length, c) -> (n, num_windows, window, c)."""
    starts = range(0, series.shape[1] - window + 1, stride)
    return np.stack([series[:, s : s + window] for s in starts], axis=1)


def labelled_windows(series, labels, window):
    """The non-overlapping windows of each series, with the series' label."""
    w = windows(series, window, window)
    n, count = w.shape[:2]
    return w.reshape((n * count,) + w.shape[2:]), np.repeat(labels, count)


def evaluate(name, train, y_train, test, y_test, probe_epochs, table):
    knn = knn_accuracy(train, y_train, test, y_test, k=5, temperature=0.1)
    probe = linear_probe(
        None, train, y_train, test, y_test, epochs=probe_epochs, learning_rate=1e-2
    )
    table.append((name, knn, probe))
    print(f"{name:32s} kNN {100 * knn:5.1f}%   linear probe {100 * probe:5.1f}%")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="BasicMotions")
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--max-offset", type=int, default=5)
    parser.add_argument("--pair-epochs", type=int, default=30)
    parser.add_argument("--cpc-epochs", type=int, default=150)
    parser.add_argument("--cpc-steps", type=int, default=3)
    parser.add_argument("--probe-epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a few steps each")
    args = parser.parse_args()
    if args.quick:
        args.pair_epochs, args.cpc_epochs, args.probe_epochs = 1, 1, 3

    keras.utils.set_random_seed(args.seed)  # the probes' initial weights
    x_train, y_train, classes = load_ucr_uea(args.dataset, "train")
    x_test, y_test, _ = load_ucr_uea(args.dataset, "test")
    if np.isnan(x_train).any() or np.isnan(x_test).any():
        raise SystemExit(f"{args.dataset} has missing values or unequal lengths.")
    mean, std = x_train.mean(axis=(0, 1)), x_train.std(axis=(0, 1)) + 1e-6
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    _, length, channels = x_train.shape
    window = args.window
    w_train, wy_train = labelled_windows(x_train, y_train, window)
    w_test, wy_test = labelled_windows(x_test, y_test, window)
    print(
        f"{args.dataset}: {len(x_train)} train / {len(x_test)} test series of "
        f"{length} steps x {channels} channels, classes {classes}; "
        f"{len(w_train)} / {len(w_test)} labelled windows of {window} steps; "
        f"backend {keras.backend.backend()}"
    )

    table = []

    def evaluate_encoder(name, encoder):
        if encoder is None:
            f_train = w_train.reshape(len(w_train), -1)
            f_test = w_test.reshape(len(w_test), -1)
        else:
            f_train = encoder.predict(w_train, verbose=0)
            f_test = encoder.predict(w_test, verbose=0)
        evaluate(name, f_train, wy_train, f_test, wy_test, args.probe_epochs, table)

    evaluate_encoder("raw windows", None)
    evaluate_encoder("random-init encoder", window_encoder(window, channels, args.seed))

    # Time-contrastive pairs: positives within max_offset steps of the anchor.
    start = time.time()
    encoder = window_encoder(window, channels, args.seed)
    model = TimeContrastive(
        encoder, ProjectionHead(hidden_dims=(64,), output_dim=32, batch_norm=False)
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    pairs = TemporalPairs(
        x_train,
        batch_size=64,
        max_offset=args.max_offset,
        window=window,
        steps_per_epoch=8 if args.quick else None,
        seed=args.seed,
    )
    history = model.fit(pairs, epochs=args.pair_epochs, verbose=0).history
    print(
        f"temporal pairs: {args.pair_epochs} epochs x {len(pairs)} steps in "
        f"{time.time() - start:.0f} s, loss {history['loss'][0]:.3f} -> "
        f"{history['loss'][-1]:.3f}"
    )
    evaluate_encoder("temporal pairs (NT-Xent)", encoder)

    # CPC: a GRU over the windows (every window / 2 steps) predicts the next ones.
    start = time.time()
    encoder = window_encoder(window, channels, args.seed)
    sequences = windows(x_train, window, max(1, window // 2))
    model = CPC(
        keras.Sequential(
            [keras.Input(sequences.shape[1:]), keras.layers.TimeDistributed(encoder)]
        ),
        keras.layers.GRU(64, return_sequences=True),
        prediction_steps=args.cpc_steps,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(
        sequences, batch_size=8, epochs=args.cpc_epochs, verbose=0
    ).history
    print(
        f"CPC: {args.cpc_epochs} epochs x {len(sequences) // 8} steps in "
        f"{time.time() - start:.0f} s, loss {history['loss'][0]:.3f} -> "
        f"{history['loss'][-1]:.3f} (chance {np.log(8 * sequences.shape[1]):.3f})"
    )
    evaluate_encoder("CPC", encoder)

    print("\n| representation | kNN (k = 5) | linear probe |\n| --- | --- | --- |")
    for name, knn, probe in table:
        print(f"| {name} | {100 * knn:.1f}% | {100 * probe:.1f}% |")


if __name__ == "__main__":
    main()
