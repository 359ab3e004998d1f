"""SimCLR on the bundled CIFAR-10 sample: kNN accuracy before and after training.

    python3 tasks.py demo                       (JAX by default)
    KERAS_BACKEND=torch python3 tasks.py demo --epochs 12

What it does, in under 5 minutes on 2 CPU cores:

1. loads the 5,000-image CIFAR-10 sample shipped in the package and holds out
   1,000 of them (100 per class); the other 4,000 are the unlabeled training set
   and, with their labels, the kNN memory;
2. builds a small CNN encoder (three 3x3 conv-batchnorm-ReLU blocks, global
   average pooling; it sees the images at 16x16, which keeps a CPU run short) and
   scores its random initialisation with the weighted kNN classifier (k=200,
   t=0.1) on the held-out images;
3. trains it with SimCLR (`model.fit` on the raw uint8 images: two random views per
   image, NT-Xent), with a `KNNMonitor` logging the held-out kNN top-1 and top-5
   accuracy per epoch into the progress bar and the History;
4. prints both accuracies, saves the trained encoder to `outputs/simclr_encoder.keras`
   and, with `keras_contrastive.visualization`, five figures in `outputs/`:
   `simclr_demo.png` (the training curves: loss, contrastive accuracy, embedding
   std, held-out kNN top-1 and top-5 per epoch, random init dashed),
   `simclr_augmentations.png` (six training images of different classes and
   five augmented views of each), `simclr_embeddings.png` (PCA of the held-out
   embeddings coloured by class) and `simclr_neighbors.png` (held-out queries
   and their 8 nearest held-out images, titles green when the class matches),
   `simclr_similarity.png` (cosine similarities of two views' projections of 16
   held-out images: the positives on the diagonal), and the held-out embeddings
   with labels and an image sprite for TensorBoard's projector in
   `outputs/projector/` (`tensorboard --logdir outputs/projector`).
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

import keras  # noqa: E402

from keras_contrastive.callbacks import KNNMonitor  # noqa: E402
from keras_contrastive.datasets import (  # noqa: E402
    CIFAR10_CLASSES,
    load_cifar10_sample,
)
from keras_contrastive.evaluation import (  # noqa: E402
    compute_embeddings,
    knn_evaluate,
)
from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter  # noqa: E402
from keras_contrastive.models import SimCLR  # noqa: E402
from keras_contrastive.visualization import (  # noqa: E402
    export_to_tensorboard_projector,
    plot_augmentations,
    plot_embeddings,
    plot_history,
    plot_nearest_neighbors,
    plot_similarity_matrix,
)


def make_encoder(widths=(32, 64, 128)):
    """A small CNN: 2x downsampling, conv-BN-ReLU blocks with max-pools, GAP.

    It takes the 32x32 images (0..255, as the augmenter returns them) and averages
    them down to 16x16 first: a quarter of the compute, which is what makes the
    demo fit a CPU budget, at little cost in what SimCLR learns on CIFAR-10.
    """
    layers = [
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.AveragePooling2D(2),
    ]
    for i, filters in enumerate(widths):
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
        ]
        if i < len(widths) - 1:
            layers.append(keras.layers.MaxPooling2D(2))
    layers.append(keras.layers.GlobalAveragePooling2D())
    return keras.Sequential(layers, name="encoder")


def save_figures(
    output_dir,
    history,
    knn_before,
    model,
    augmenter,
    x_train,
    x_test,
    y_test,
    embeddings,
):
    """The demo's pictures (keras_contrastive.visualization), as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {}
    # Training curves; the kNN panel gets the random-init accuracy for reference.
    fig = plot_history(
        history,
        metrics=[
            "loss",
            "contrastive_accuracy",
            "embedding_std",
            "val_knn_accuracy",
            "val_knn_top5_accuracy",
        ],
    )
    knn_axes = [ax for ax in fig.axes if ax.get_title() == "kNN accuracy"]
    for ax in knn_axes:
        ax.axhline(knn_before, ls="--", color="grey", label="top-1, random init")
        ax.legend(fontsize=8)
    paths["curves"] = os.path.join(output_dir, "simclr_demo.png")
    fig.savefig(paths["curves"], dpi=110)
    # What the augmenter makes of six training images.
    fig = plot_augmentations(x_train[::700][:6], augmenter, num_views=5)
    paths["augmentations"] = os.path.join(output_dir, "simclr_augmentations.png")
    fig.savefig(paths["augmentations"], dpi=110)
    # The held-out embeddings after training, and some held-out neighbours.
    fig = plot_embeddings(
        embeddings, y_test, class_names=CIFAR10_CLASSES, title="held-out, PCA"
    )
    paths["embeddings"] = os.path.join(output_dir, "simclr_embeddings.png")
    fig.savefig(paths["embeddings"], dpi=110)
    fig = plot_nearest_neighbors(
        x_test, embeddings, queries=6, k=8, labels=y_test, class_names=CIFAR10_CLASSES
    )
    paths["neighbors"] = os.path.join(output_dir, "simclr_neighbors.png")
    fig.savefig(paths["neighbors"], dpi=110)

    # Two augmented views of 16 held-out images through encoder + head: the
    # positives on the diagonal (what NT-Xent compares).
    def project(images, training=False):
        return model.projection_head(
            model.encoder(images, training=False), training=False
        )

    views = [augmenter(x_test[::62][:16], training=True) for _ in range(2)]
    fig = plot_similarity_matrix(
        compute_embeddings(project, views[0]),
        compute_embeddings(project, views[1]),
        title="projections of two views (held-out)",
        xlabel="view 2",
        ylabel="view 1",
        color_range=None,  # the cosines of a small encoder lie close together
    )
    paths["similarity"] = os.path.join(output_dir, "simclr_similarity.png")
    fig.savefig(paths["similarity"], dpi=110)
    plt.close("all")
    # The held-out embeddings for TensorBoard's projector (with image sprite).
    export_to_tensorboard_projector(
        embeddings,
        y_test,
        os.path.join(output_dir, "projector"),
        images=x_test,
        class_names=CIFAR10_CLASSES,
    )
    paths["projector"] = os.path.join(output_dir, "projector")
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--temperature", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default=os.path.join(ROOT, "outputs"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    print(f"Keras {keras.__version__} on {keras.backend.backend()}", flush=True)

    (x_train, y_train), (x_test, y_test) = load_cifar10_sample(test_fraction=0.2)
    print(
        f"bundled CIFAR-10 sample: {len(x_train)} training images (unlabeled for "
        f"SimCLR), {len(x_test)} held out for the kNN read-out",
        flush=True,
    )
    memory, held_out = (x_train, y_train), (x_test, y_test)

    encoder = make_encoder()
    knn_before = knn_evaluate(encoder, memory, held_out)
    print(f"random-init encoder: held-out kNN accuracy {100 * knn_before:.1f}%")

    augmenter = SimCLRAugmenter((32, 32), crop_scale=(0.2, 1.0), blur=False)
    model = SimCLR(
        encoder,
        projection_head=ProjectionHead(hidden_dims=(128,), output_dim=64),
        augmenter=augmenter,
        temperature=args.temperature,
    )
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    monitor = KNNMonitor(memory, held_out, k=200, temperature=0.1)
    history = model.fit(
        x_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        callbacks=[monitor],
        verbose=1,
    ).history
    knn_after = history["val_knn_accuracy"][-1]
    top5_after = history["val_knn_top5_accuracy"][-1]

    os.makedirs(args.output_dir, exist_ok=True)
    encoder_path = os.path.join(args.output_dir, "simclr_encoder.keras")
    model.encoder.save(encoder_path)
    embeddings = compute_embeddings(model.encoder, x_test)
    figures = save_figures(
        args.output_dir,
        history,
        knn_before,
        model,
        augmenter,
        x_train,
        x_test,
        y_test,
        embeddings,
    )

    print()
    print(f"held-out kNN accuracy, random init: {100 * knn_before:5.1f}%")
    print(
        f"held-out kNN accuracy, after SimCLR: {100 * knn_after:5.1f}%  "
        f"({100 * (knn_after - knn_before):+.1f} points, {args.epochs} epochs)"
    )
    print(f"held-out kNN top-5 accuracy, after SimCLR: {100 * top5_after:5.1f}%")
    print(f"saved the encoder to {encoder_path}")
    for name, figure_path in figures.items():
        print(f"saved the {name} to {figure_path}")
    print(f"total time {time.perf_counter() - start:.0f} s")
    return knn_before, knn_after


if __name__ == "__main__":
    main()
