"""keras_contrastive.visualization: what is drawn against independent references."""

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from keras_contrastive import visualization  # noqa: E402
from keras_contrastive.layers import MultiView, SimCLRAugmenter  # noqa: E402
from keras_contrastive.visualization import (  # noqa: E402
    export_to_tensorboard_projector,
    pca_2d,
    plot_augmentations,
    plot_embeddings,
    plot_history,
    plot_nearest_neighbors,
    plot_similarity_matrix,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _drawn(ax):
    """The image array an axes shows (grey images come back as (H, W))."""
    return np.asarray(ax.images[0].get_array())


def _images(rng, n=6, size=8, channels=3):
    return rng.integers(0, 256, (n, size, size, channels)).astype("uint8")


# ----------------------------------------------------------------------------------
# plot_augmentations


def test_augmentations_grid_shows_originals_and_each_call_of_the_augmenter(rng):
    images = _images(rng, 5)
    calls = []

    def augmenter(batch):  # deterministic: view i is the batch minus 10 * i
        calls.append(batch.copy())
        return batch.astype("float32") - 10.0 * len(calls)

    fig = plot_augmentations(images, augmenter, num_views=3, num_images=4)
    axes = np.array(fig.axes).reshape(4, 4)
    assert len(calls) == 3
    np.testing.assert_array_equal(calls[0], images[:4])
    for row in range(4):
        np.testing.assert_allclose(_drawn(axes[row, 0]), images[row] / 255.0)
        for view in range(1, 4):
            expected = np.clip((images[row] - 10.0 * view) / 255.0, 0, 1)
            np.testing.assert_allclose(_drawn(axes[row, view]), expected, atol=1e-6)


def test_augmentations_of_a_multiview_use_its_views_and_value_range(rng):
    images = rng.uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    views = MultiView(SimCLRAugmenter(16, blur=False, value_range=(0, 1), seed=0), 3)
    fig = plot_augmentations(images, views, value_range=(0, 1))
    assert len(fig.axes) == 2 * 4
    for ax in fig.axes:
        shown = _drawn(ax)
        assert shown.shape == (16, 16, 3) and shown.min() >= 0 and shown.max() <= 1
    np.testing.assert_allclose(_drawn(fig.axes[0]), images[0])
    # The views differ from the original and from each other.
    assert not np.allclose(_drawn(fig.axes[1]), _drawn(fig.axes[2]))


def test_augmentations_grayscale_and_errors(rng):
    images = rng.integers(0, 256, (2, 8, 8)).astype("uint8")
    fig = plot_augmentations(images, lambda x: x, num_views=1)
    np.testing.assert_allclose(_drawn(fig.axes[1]), images[0] / 255.0)
    with pytest.raises(TypeError, match="`augmenter` must be"):
        plot_augmentations(images, "flip")
    with pytest.raises(ValueError, match=r"`images.shape` must be"):
        plot_augmentations(np.zeros((2, 8)), lambda x: x)
    with pytest.raises(ValueError, match="`augmenter` must be a callable returning"):
        plot_augmentations(images, lambda x: x[:1])
    with pytest.raises(ValueError, match="`value_range` must be"):
        plot_augmentations(images, lambda x: x, value_range=(1, 1))


# ----------------------------------------------------------------------------------
# plot_history


def test_history_panels_and_lines_hold_the_logged_values():
    logs = {
        "loss": [5.0, 4.0, 3.5, 3.0],
        "val_loss": [5.5, 4.5, 4.0, 3.8],
        "contrastive_accuracy": [0.1, 0.2, 0.3, 0.4],
        "embedding_std": [0.05, 0.06, 0.06, 0.07],
        "val_knn_accuracy": [0.3, 0.4],  # every=2
        "val_knn_top5_accuracy": [0.7, 0.8],
    }
    fig = plot_history(logs)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "contrastive_accuracy", "embedding_std", "kNN accuracy"]
    lines = {line.get_label(): line for ax in fig.axes for line in ax.get_lines()}
    assert set(lines) == set(logs)
    for name, values in logs.items():
        np.testing.assert_allclose(lines[name].get_ydata(), values)
    np.testing.assert_allclose(lines["loss"].get_xdata(), [1, 2, 3, 4])
    # Logged every second epoch: drawn at epochs 2 and 4.
    np.testing.assert_allclose(lines["val_knn_accuracy"].get_xdata(), [2, 4])


def test_history_default_order_puts_the_library_values_first_and_knn_last():
    logs = {
        "val_knn_accuracy": [0.3],
        "skipped_steps": [1.0],
        "embedding_std": [0.1],
        "loss": [4.0],
    }
    fig = plot_history(logs)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "embedding_std", "skipped_steps", "kNN accuracy"]
    # Three panels a row: 2 rows, the unused axes removed.
    assert len(fig.axes) == 4


def test_history_hides_skipped_steps_only_while_there_were_none():
    logs = {"loss": [4.0, 3.0], "skipped_steps": [0.0, 0.0]}
    assert [ax.get_title() for ax in plot_history(logs).axes] == ["loss"]
    fig = plot_history(logs, metrics=["loss", "skipped_steps"])  # asked for: drawn
    assert [ax.get_title() for ax in fig.axes] == ["loss", "skipped_steps"]
    logs["skipped_steps"] = [0.0, 2.0]
    assert [ax.get_title() for ax in plot_history(logs).axes] == [
        "loss",
        "skipped_steps",
    ]


def test_history_object_and_metrics_selection():
    import keras

    history = keras.callbacks.History()
    history.history = {"loss": [2.0, 1.0], "learning_rate": [0.1, 0.1]}
    fig = plot_history(history, metrics=["loss"])
    assert [ax.get_title() for ax in fig.axes] == ["loss"]
    with pytest.raises(ValueError, match=r"`metrics` must be names logged.*Not logged"):
        plot_history(history, metrics=["val_knn_accuracy"])
    with pytest.raises(TypeError, match="`history` must be"):
        plot_history([1.0, 2.0])
    with pytest.raises(ValueError, match="`history` must be"):
        plot_history({})


# ----------------------------------------------------------------------------------
# plot_embeddings / pca_2d


def _reference_pca(x):
    """PCA by eigen-decomposition of the covariance, float64, sign: largest
    component of each axis positive."""
    x = np.asarray(x, np.float64)
    centred = x - x.mean(0)
    values, vectors = np.linalg.eigh(centred.T @ centred)
    axes = vectors[:, np.argsort(values)[::-1][:2]].T
    for axis in axes:
        axis *= np.sign(axis[np.argmax(np.abs(axis))])
    return centred @ axes.T


def test_pca_matches_an_eigendecomposition(rng):
    x = rng.normal(size=(50, 6)) * np.array([5, 3, 1, 1, 0.5, 0.1])
    np.testing.assert_allclose(pca_2d(x), _reference_pca(x), atol=1e-4)
    # One feature: the second coordinate is 0.
    line = pca_2d(np.arange(5.0)[:, None])
    np.testing.assert_allclose(line[:, 1], 0.0)
    np.testing.assert_allclose(np.abs(line[:, 0]), np.abs(np.arange(5.0) - 2))


def test_embeddings_scatter_per_class_holds_the_pca_coordinates(rng):
    x = rng.normal(size=(40, 5)).astype("float32")
    labels = rng.integers(0, 4, 40)
    names = ["cat", "dog", "ship", "frog"]
    fig = plot_embeddings(x, labels, class_names=names)
    ax = fig.axes[0]
    reference = _reference_pca(x)
    assert len(ax.collections) == 4
    for label, scatter in enumerate(ax.collections):
        np.testing.assert_allclose(
            scatter.get_offsets(), reference[labels == label], atol=1e-4
        )
    assert [t.get_text() for t in ax.get_legend().get_texts()] == names
    assert ax.get_title() == "PCA"
    # Without labels: one scatter of every point.
    fig = plot_embeddings(x)
    np.testing.assert_allclose(
        fig.axes[0].collections[0].get_offsets(), reference, atol=1e-4
    )


def test_embeddings_tsne_and_umap_use_their_package_or_say_what_to_install(
    rng, monkeypatch
):
    import sys
    import types

    x = rng.normal(size=(12, 3))
    for method, module_name in (("tsne", "sklearn.manifold"), ("umap", "umap")):
        monkeypatch.setitem(sys.modules, module_name, None)  # not installed
        with pytest.raises(ImportError, match=f"method='{method}'.*pip install"):
            plot_embeddings(x, method=method)

    received = {}

    class FakeTSNE:  # records its arguments, returns the first two features
        def __init__(self, **kwargs):
            received.update(kwargs)

        def fit_transform(self, data):
            return data[:, :2]

    fake = types.ModuleType("sklearn.manifold")
    fake.TSNE = FakeTSNE
    monkeypatch.setitem(sys.modules, "sklearn", types.ModuleType("sklearn"))
    monkeypatch.setitem(sys.modules, "sklearn.manifold", fake)
    fig = plot_embeddings(x, method="tsne", seed=3, perplexity=2.0)
    np.testing.assert_allclose(
        fig.axes[0].collections[0].get_offsets(), x[:, :2], atol=1e-6
    )
    assert received["random_state"] == 3 and received["perplexity"] == 2.0
    assert fig.axes[0].get_title() == "t-SNE"


def test_embeddings_errors():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="`method` must be one of"):
        plot_embeddings(x, method="isomap")
    with pytest.raises(ValueError, match=r"`labels.shape` must be"):
        plot_embeddings(x, labels=[0, 1])
    with pytest.raises(ValueError, match="`class_names` must be a list with a name"):
        plot_embeddings(x, labels=[0, 1, 2, 3], class_names=["a"])
    with pytest.raises(ValueError, match=r"`embeddings.shape` must be of rank 2"):
        plot_embeddings(np.zeros(4))
    with pytest.raises(TypeError, match="`method_kwargs` must be empty"):
        plot_embeddings(x, perplexity=5)


# ----------------------------------------------------------------------------------
# plot_similarity_matrix


def test_similarity_heatmap_is_the_cosine_matrix(rng):
    a = rng.normal(size=(7, 5))
    b = rng.normal(size=(9, 5))
    reference = np.array(
        [[u @ v / np.linalg.norm(u) / np.linalg.norm(v) for v in b] for u in a]
    )
    fig = plot_similarity_matrix(a, b)
    np.testing.assert_allclose(_drawn(fig.axes[0]), reference, atol=1e-6)
    assert fig.axes[0].images[0].get_clim() == (-1.0, 1.0)
    stretched = plot_similarity_matrix(a, b, color_range=None).axes[0].images[0]
    assert stretched.get_clim() == pytest.approx((reference.min(), reference.max()))
    own = _drawn(plot_similarity_matrix(a).axes[0])
    np.testing.assert_allclose(np.diag(own), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match=r"`other_embeddings.shape\[1\]` must be"):
        plot_similarity_matrix(a, rng.normal(size=(3, 4)))


# ----------------------------------------------------------------------------------
# plot_nearest_neighbors


def _reference_neighbors(x, query, k):
    x = np.asarray(x, np.float64)
    sims = [
        (-(x[query] @ x[j]) / np.linalg.norm(x[query]) / np.linalg.norm(x[j]), j)
        for j in range(len(x))
        if j != query
    ]
    return [j for _, j in sorted(sims)[:k]]


def test_nearest_neighbor_grid_matches_brute_force(rng):
    images = _images(rng, 30, size=6)
    x = rng.normal(size=(30, 8))
    labels = rng.integers(0, 3, 30)
    fig = plot_nearest_neighbors(images, x, queries=[3, 17], k=4, labels=labels)
    axes = np.array(fig.axes).reshape(2, 5)
    for row, query in enumerate([3, 17]):
        expected = _reference_neighbors(x, query, 4)
        assert fig.neighbor_indices[row].tolist() == expected
        np.testing.assert_allclose(_drawn(axes[row, 0]), images[query] / 255.0)
        for col, index in enumerate(expected, start=1):
            np.testing.assert_allclose(_drawn(axes[row, col]), images[index] / 255.0)
            colour = axes[row, col].title.get_color()
            same = labels[index] == labels[query]
            assert colour == ("tab:green" if same else "tab:red")
    # Class names in the titles.
    names = ["cat", "dog", "ship"]
    fig = plot_nearest_neighbors(
        images, x, queries=[3], k=2, labels=labels, class_names=names
    )
    assert fig.axes[0].get_title() == f"query: {names[labels[3]]}"
    assert fig.axes[1].get_title().startswith(names[labels[fig.neighbor_indices[0, 0]]])
    # queries=q spreads q queries over the rows.
    fig = plot_nearest_neighbors(images, x, queries=3, k=2)
    assert fig.query_indices.tolist() == [0, 14, 29]


def test_nearest_neighbor_errors(rng):
    images, x = _images(rng, 5), rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match=r"`k` must be an int in \[1, 4\]"):
        plot_nearest_neighbors(images, x, k=5)
    with pytest.raises(ValueError, match=r"`embeddings.shape` must be \(5, dim\)"):
        plot_nearest_neighbors(images, x[:4], k=2)
    with pytest.raises(ValueError, match=r"`queries` must be row indices"):
        plot_nearest_neighbors(images, x, queries=[7], k=2)
    with pytest.raises(TypeError, match="`queries` must be an int or"):
        plot_nearest_neighbors(images, x, queries=[0.5], k=2)


# ----------------------------------------------------------------------------------
# export_to_tensorboard_projector


def test_projector_files_parse_back(rng, tmp_path):
    x = rng.normal(size=(10, 4)).astype("float32")
    labels = rng.integers(0, 3, 10)
    images = _images(rng, 10, size=6)
    paths = export_to_tensorboard_projector(
        x, labels, tmp_path / "logs", images=images, class_names=["a", "b", "c"]
    )
    np.testing.assert_allclose(np.loadtxt(paths["tensor"], delimiter="\t"), x, 1e-6)
    rows = [line.split("\t") for line in open(paths["metadata"]).read().splitlines()]
    assert rows[0] == ["label", "class"]
    assert rows[1:] == [[str(y), "abc"[y]] for y in labels]
    config = open(paths["config"]).read()
    assert re.search(r'tensor_path: "embeddings.tsv"', config)
    assert re.search(r'metadata_path: "metadata.tsv"', config)
    assert re.findall(r"single_image_dim: (\d+)", config) == ["6", "6"]
    assert config.count("{") == config.count("}") == 2
    # The sprite: a 4 x 4 grid of 6 x 6 tiles, row-major, unused tiles black.
    sprite = np.asarray(Image.open(paths["sprite"]))
    assert sprite.shape == (24, 24, 3)
    for i in range(16):
        row, col = divmod(i, 4)
        tile = sprite[row * 6 : row * 6 + 6, col * 6 : col * 6 + 6]
        np.testing.assert_array_equal(tile, images[i] if i < 10 else 0)


def test_projector_without_images_or_labels_and_errors(rng, tmp_path):
    x = rng.normal(size=(3, 2))
    paths = export_to_tensorboard_projector(x, [2, 0, 1], tmp_path)
    assert open(paths["metadata"]).read() == "2\n0\n1\n"
    assert "sprite" not in open(paths["config"]).read()
    paths = export_to_tensorboard_projector(x, None, tmp_path / "bare")
    assert set(paths) == {"tensor", "config"}
    assert "metadata" not in open(paths["config"]).read()
    with pytest.raises(ValueError, match=r"`images.shape` must be \(3, height"):
        export_to_tensorboard_projector(x, None, tmp_path, images=_images(rng, 2))
    with pytest.raises(ValueError, match=r"`labels.shape` must be"):
        export_to_tensorboard_projector(x, [0, 1], tmp_path)
    with pytest.raises(ValueError, match="`labels` must be given when"):
        export_to_tensorboard_projector(x, None, tmp_path, class_names=["a"])


def test_projector_sprite_tiles_shrink_to_tensorboard_limit():
    # 10,000 images of 128 x 128 on a 100 x 100 grid: 81-pixel tiles fit 8,192.
    assert visualization._sprite_tile_size(10_000, 128, 128) == (81, 81)
    assert visualization._sprite_tile_size(100, 32, 32) == (32, 32)


def test_missing_matplotlib_names_the_plot_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"keras_contrastive\[plot\]"):
        plot_similarity_matrix(np.eye(2))
