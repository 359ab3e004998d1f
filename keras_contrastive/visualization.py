"""keras_contrastive.visualization: pictures of data, training and embeddings.

- `plot_augmentations`: images next to their augmented views (what the augmenter
  does to real images: the first thing to check).
- `plot_history`: training curves from a Keras `History` (loss,
  `contrastive_accuracy`, `embedding_std`, kNN accuracy when logged).
- `plot_embeddings`: a 2-D scatter of embeddings coloured by label (PCA by
  default; t-SNE or UMAP when their package is installed).
- `pca_2d`: the 2-D PCA projection it draws by default, in NumPy.
- `plot_similarity_matrix`: the cosine similarities of a batch as a heatmap.
- `plot_nearest_neighbors`: query images and the images of their nearest
  neighbours in embedding space.
- `export_to_tensorboard_projector`: embeddings, labels and an optional sprite of
  images in the files of TensorBoard's Embedding Projector (no TensorFlow needed).

The plotting functions need matplotlib (`pip install "keras_contrastive[plot]"`),
imported when one of them is first called; each returns the `matplotlib` Figure
it drew (made with `matplotlib.pyplot`, so `plt.show()` and notebooks display it;
save it with `fig.savefig(path)`, free it with `plt.close(fig)`). Images are
expected in `value_range` (default `(0, 255)`, the library's convention, uint8 or
float) and shown clipped to it.
"""

import os

import numpy as np

from keras_contrastive._validation import (
    check_int,
    check_one_of,
    check_pair,
    check_positive_int,
    check_string,
    fail,
    is_int,
    shown_as,
    summarize,
)
from keras_contrastive.evaluation.arrays import check_embeddings, check_labels, to_numpy

__all__ = [
    "export_to_tensorboard_projector",
    "pca_2d",
    "plot_augmentations",
    "plot_embeddings",
    "plot_history",
    "plot_nearest_neighbors",
    "plot_similarity_matrix",
]

EMBEDDING_METHODS = ("pca", "tsne", "umap")


def _pyplot():
    """`matplotlib.pyplot`, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "keras_contrastive.visualization needs matplotlib, which is not "
            'installed. Install it with `pip install "keras_contrastive[plot]"` '
            "(or `pip install matplotlib`)."
        ) from error
    return plt


# ----------------------------------------------------------------------------------
# Argument checks.


def _check_images(name, images, allow_empty=False):
    """`images` as a NumPy `(N, H, W, C)` array (C in 1, 3, 4); `(N, H, W)` gets C=1."""
    images = to_numpy(images)
    if not (np.issubdtype(images.dtype, np.number) or images.dtype == np.bool_):
        fail(f"{name}.dtype", "numeric", str(images.dtype), TypeError)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        fail(
            f"{name}.shape",
            "(num_images, height, width, channels) with 1, 3 or 4 channels, "
            "or (num_images, height, width)",
            images.shape,
        )
    if not allow_empty and images.shape[0] == 0:
        fail(f"{name}.shape", "(num_images, ...) with num_images >= 1", images.shape)
    return images


def _displayable(images, value_range):
    """Images scaled from `value_range` to [0, 1] and clipped, float32."""
    low, high = value_range
    scaled = (images.astype(np.float32) - low) / (high - low)
    return np.clip(scaled, 0.0, 1.0)


def _check_value_range(value_range):
    value_range = check_pair("value_range", value_range)
    if value_range[0] == value_range[1]:
        fail("value_range", "a pair (low, high) with low < high", value_range)
    return value_range


def _show_image(ax, image, title=None, color=None):
    """Draws one [0, 1] image `(H, W, C)` without ticks."""
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=8, **({"color": color} if color else {}))


def _check_class_names(class_names, labels):
    if class_names is None:
        return None
    if isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__len__"):
        fail(
            "class_names",
            "a list of names indexed by label",
            summarize(class_names),
            TypeError,
        )
    class_names = [str(name) for name in class_names]
    if labels is not None and labels.size and labels.max() >= len(class_names):
        fail(
            "class_names",
            f"a list with a name for every label (the largest is {labels.max()})",
            shown_as(f"a list of {len(class_names)} names"),
        )
    return class_names


# ----------------------------------------------------------------------------------
# Augmentations.


def plot_augmentations(
    images,
    augmenter,
    num_views=None,
    num_images=8,
    value_range=(0, 255),
    image_size=1.6,
):
    """Draws images (first column) next to `num_views` augmented views of each.

    What the augmenter does to real images is the first thing to check before a
    long run: crops that lose the object, colours pushed to grey, blur that erases
    everything. Each row is one image; column 0 is the image as given and the
    other columns are independent augmentations of it (the augmenter is called in
    training mode, once per view, on the batch of the first `num_images` images).

    Args:
        images: `(N, height, width, channels)` (or `(N, height, width)`) images in
            `value_range`, NumPy or backend tensor.
        augmenter: a Keras layer or callable mapping an image batch to an
            augmented batch (for example `SimCLRAugmenter`), or a `MultiView`
            (or any callable returning a tuple of views).
        num_views: augmented views per image. Default: a `MultiView`'s own number
            of views (one call), else 4.
        num_images: how many of the first images to show (all when fewer).
        value_range: `(low, high)` of the pixel values, as the augmenter's;
            shown scaled to [0, 1] and clipped.
        image_size: inches per image in the figure.

    Returns:
        The matplotlib Figure: `num_images` rows, `1 + num_views` columns.

    Example:

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from keras_contrastive.layers import SimCLRAugmenter
    >>> images = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), "uint8")
    >>> fig = plot_augmentations(images, SimCLRAugmenter(16, blur=False, seed=0))
    >>> len(fig.axes)  # 2 rows x (original + 4 views)
    10
    """
    images = _check_images("images", images)
    if not callable(augmenter):
        fail(
            "augmenter",
            "a Keras layer or callable mapping images to augmented images",
            summarize(augmenter),
            TypeError,
        )
    if num_views is not None:
        num_views = check_positive_int("num_views", num_views)
    num_images = check_positive_int("num_images", num_images)
    value_range = _check_value_range(value_range)
    image_size = _check_inches(image_size)
    batch = images[:num_images]

    import keras

    def call():
        if isinstance(augmenter, keras.layers.Layer):
            out = augmenter(batch, training=True)
        else:
            out = augmenter(batch)
        return list(out) if isinstance(out, (tuple, list)) else [out]

    views = call()
    wanted = num_views or (len(views) if len(views) > 1 else 4)
    while len(views) < wanted:
        views += call()
    views = [_check_view(view, batch.shape, i) for i, view in enumerate(views[:wanted])]

    plt = _pyplot()
    rows, cols = len(batch), 1 + wanted
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(image_size * cols, image_size * rows),
        squeeze=False,
    )
    for row in range(rows):
        _show_image(
            axes[row, 0],
            _displayable(batch[row], value_range),
            "original" if row == 0 else None,
        )
        for col, view in enumerate(views, start=1):
            _show_image(
                axes[row, col],
                _displayable(view[row], value_range),
                f"view {col}" if row == 0 else None,
            )
    fig.tight_layout()
    return fig


def _check_view(view, shape, index):
    view = to_numpy(view)
    if view.ndim == 3:
        view = view[..., None]
    if view.ndim != 4 or view.shape[0] != shape[0]:
        fail(
            "augmenter",
            f"a callable returning one image batch of {shape[0]} images per view",
            shown_as(f"a callable whose view {index} has shape {view.shape}"),
        )
    return view


def _check_inches(value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        fail("image_size", "a positive number of inches", value, TypeError)
    return float(value)


# ----------------------------------------------------------------------------------
# Training curves.


def _history_dict(history):
    """`{name: list of floats}` from a Keras History or a dict."""
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict):
        fail(
            "history",
            "a keras.callbacks.History (what `fit` returns) or its `.history` dict",
            summarize(history),
            TypeError,
        )
    if not logs:
        fail("history", "a History with at least one logged value", logs)
    curves = {}
    for name, values in logs.items():
        try:
            array = np.asarray(values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            continue  # not numbers: nothing to plot
        if array.size:
            curves[str(name)] = array
    return curves


def _panel_of(name):
    """The panel a logged value is drawn in: kNN values together, val_ with train."""
    if "knn" in name:
        return _KNN_PANEL
    return name[4:] if name.startswith("val_") else name


def plot_history(history, metrics=None, image_size=3.5):
    """Draws the training curves of a `fit` run, one panel per logged metric.

    The values `fit` logs for the library's models (`loss`,
    `contrastive_accuracy`, `embedding_std`) first, then any other logged value,
    each with its `val_` counterpart when there is one, and last all kNN values
    (`KNNMonitor`'s `val_knn_accuracy` and `val_knn_top5_accuracy`) in one
    panel; three panels a row. A value logged only every few
    epochs (a `KNNMonitor` with `every > 1`) is drawn at the epochs where it was
    logged: with `m` values over `n` epochs, at epochs `n/m, 2n/m, ..., n`.

    A collapsing representation shows as `embedding_std` falling towards 0
    while the loss stalls (docs/concepts.md).

    Args:
        history: the `keras.callbacks.History` that `fit` returns, or its
            `.history` dict (`{name: [value per epoch]}`).
        metrics: names to draw, in panel order; default every logged numeric
            value except a `skipped_steps` that stayed 0 (the count of steps
            whose loss was not finite: a panel only when there were any).
        image_size: inches per panel (height; the width is 1.3 times that).

    Returns:
        The matplotlib Figure, one axes per panel; the lines are labelled with
        the logged names.

    Example:

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> logs = {"loss": [5.1, 4.2, 3.9], "val_knn_accuracy": [0.31, 0.38, 0.42]}
    >>> fig = plot_history(logs)
    >>> [ax.get_title() for ax in fig.axes]
    ['loss', 'kNN accuracy']
    """
    curves = _history_dict(history)
    if metrics is not None:
        if isinstance(metrics, str):
            metrics = [metrics]
        if not isinstance(metrics, (list, tuple)) or not metrics:
            fail("metrics", "a non-empty list of logged names", metrics, TypeError)
        missing = [name for name in metrics if name not in curves]
        if missing:
            fail(
                "metrics",
                f"names logged in the history ({sorted(curves)})",
                list(metrics),
                detail=f"Not logged: {missing}",
            )
        names = list(metrics)
    else:
        names = [
            name
            for name in curves
            if not (name in _HIDDEN_WHEN_ZERO and not any(curves[name]))
        ]
        if not names:
            fail("history", "a History with numeric values", summarize(history))
    image_size = _check_inches(image_size)
    num_epochs = max(len(curves[name]) for name in curves)
    panels = {}
    for name in names:
        panels.setdefault(_panel_of(name), []).append(name)
    if metrics is None:  # the library's values first, kNN last
        first = [p for p in _FIRST_PANELS if p in panels]
        rest = [p for p in panels if p not in _FIRST_PANELS and p != _KNN_PANEL]
        last = [_KNN_PANEL] if _KNN_PANEL in panels else []
        panels = {p: panels[p] for p in first + rest + last}

    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(1.3 * image_size * cols, image_size * rows),
        squeeze=False,
    )
    axes = axes.reshape(-1)
    for ax in axes[len(panels) :]:
        ax.remove()
    for ax, (title, members) in zip(axes, panels.items()):
        for name in members:
            values = curves[name]
            step = num_epochs / len(values)
            epochs = step * np.arange(1, len(values) + 1)
            ax.plot(epochs, values, marker="o", markersize=3, label=name)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(members) > 1 or members[0] != title:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


_FIRST_PANELS = ("loss", "contrastive_accuracy", "embedding_std")
_KNN_PANEL = "kNN accuracy"
_HIDDEN_WHEN_ZERO = ("skipped_steps",)


# ----------------------------------------------------------------------------------
# Embeddings in 2-D.


def pca_2d(embeddings):
    """The rows of `embeddings` projected on their two principal axes (NumPy).

    Rows are centred and projected on the first two right singular vectors of
    the centred matrix (float64 SVD). Each axis' sign is fixed as in
    scikit-learn's `svd_flip`: its largest-magnitude component is positive, so
    the result does not depend on the SVD routine. With one feature the second
    coordinate is 0.

    Args:
        embeddings: `(num_samples, dim)` array.

    Returns:
        float32 `(num_samples, 2)` coordinates.

    Example:

    >>> import numpy as np
    >>> x = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.1]])
    >>> points = pca_2d(x)
    >>> points.shape, float(points[2, 0] - points[0, 0]) > 3.9
    ((3, 2), True)
    """
    x = check_embeddings("embeddings", embeddings, allow_empty=False).astype(np.float64)
    centred = x - x.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    axes = axes[:2]
    signs = np.sign(axes[np.arange(len(axes)), np.argmax(np.abs(axes), axis=1)])
    axes = axes * np.where(signs == 0, 1.0, signs)[:, None]
    points = centred @ axes.T
    if points.shape[1] < 2:
        points = np.concatenate([points, np.zeros((len(points), 1))], axis=1)
    return points.astype(np.float32)


def _project(x, method, seed, method_kwargs):
    if method == "pca":
        if method_kwargs:
            fail(
                "method_kwargs",
                "empty for method='pca'",
                shown_as(str(sorted(method_kwargs))),
                TypeError,
            )
        return pca_2d(x)
    if len(x) < 3:
        fail(
            "embeddings.shape",
            f"(num_samples, dim) with num_samples >= 3 for method={method!r}",
            x.shape,
        )
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError as error:
            raise ImportError(
                "`plot_embeddings(method='tsne')` needs scikit-learn, which is not "
                "installed: `pip install scikit-learn`, or use method='pca'."
            ) from error
        options = {
            "n_components": 2,
            "init": "pca",
            "random_state": seed,
            # t-SNE requires perplexity < num_samples.
            "perplexity": min(30.0, (len(x) - 1) / 3),
        }
        options.update(method_kwargs)
        return np.asarray(TSNE(**options).fit_transform(x), dtype=np.float32)
    try:
        import umap
    except ImportError as error:
        raise ImportError(
            "`plot_embeddings(method='umap')` needs umap-learn, which is not "
            "installed: `pip install umap-learn`, or use method='pca'."
        ) from error
    options = {"n_components": 2, "random_state": seed}
    options.update(method_kwargs)
    return np.asarray(umap.UMAP(**options).fit_transform(x), dtype=np.float32)


def plot_embeddings(
    embeddings,
    labels=None,
    method="pca",
    class_names=None,
    seed=0,
    point_size=6.0,
    title=None,
    **method_kwargs,
):
    """Draws embeddings in 2-D, one colour per label.

    `method="pca"` (default) projects on the two principal axes (`pca_2d`, in
    NumPy: fast, deterministic, and linear, so distances along the axes mean
    something). `"tsne"` runs scikit-learn's t-SNE (van der Maaten and Hinton,
    2008, "Visualizing Data using t-SNE"), `"umap"` the umap-learn package
    (McInnes, Healy and Melville, 2018, "UMAP: Uniform Manifold Approximation
    and Projection for Dimension Reduction"); both show neighbourhoods rather
    than global geometry, take seconds to minutes, and raise an ImportError
    naming the package when it is not installed.

    Args:
        embeddings: `(num_samples, dim)` array, for example from
            `keras_contrastive.evaluation.compute_embeddings`.
        labels: optional integer labels `(num_samples,)`: one colour and legend
            entry per class (the scatter of class `c` is drawn `c`-th, in
            ascending label order). None: one colour.
        method: "pca", "tsne" or "umap".
        class_names: optional names indexed by label, for the legend.
        seed: `random_state` of t-SNE and UMAP.
        point_size: marker area in points^2.
        title: the axes' title (default: the method).
        **method_kwargs: further arguments of `sklearn.manifold.TSNE` or
            `umap.UMAP` (for example `perplexity=50`).

    Returns:
        The matplotlib Figure; its axes holds one scatter per class, whose
        `get_offsets()` are that class' 2-D coordinates.

    Example:

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> embeddings = rng.normal(size=(30, 8))
    >>> fig = plot_embeddings(embeddings, labels=np.arange(30) % 3)
    >>> len(fig.axes[0].collections)  # one scatter per class
    3
    """
    x = check_embeddings("embeddings", embeddings, allow_empty=False)
    if labels is not None:
        labels = check_labels("labels", labels, len(x), "embeddings")
    check_one_of("method", method, EMBEDDING_METHODS)
    class_names = _check_class_names(class_names, labels)
    if not is_int(seed):
        fail("seed", "an int", seed, TypeError)
    if not isinstance(point_size, (int, float)) or point_size <= 0:
        fail("point_size", "a positive number", point_size, TypeError)
    if title is not None:
        check_string("title", title)
    points = _project(x, method, int(seed), method_kwargs)

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=point_size)
    else:
        classes = np.unique(labels)
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for i, label in enumerate(classes):
            chosen = labels == label
            name = class_names[label] if class_names else str(label)
            ax.scatter(
                points[chosen, 0],
                points[chosen, 1],
                s=point_size,
                color=cmap(i % cmap.N),
                label=name,
            )
        if len(classes) <= 20:
            ax.legend(markerscale=2, fontsize=7, loc="best")
    ax.set_title(title or {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}[method])
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------
# Similarities.


def _unit_rows(x):
    x = x.astype(np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def plot_similarity_matrix(
    embeddings,
    other_embeddings=None,
    title="cosine similarity",
    xlabel=None,
    ylabel=None,
    color_range=(-1.0, 1.0),
):
    """Draws the cosine similarities between the rows of two batches as a heatmap.

    Entry `(i, j)` is `cos(embeddings[i], other_embeddings[j])`, coloured on a
    fixed scale from -1 (blue) to 1 (red). For two views' projections of one
    batch (what a view-pair loss such as `NTXent` compares) the diagonal holds
    the positive pairs: a trained model shows a bright diagonal on a paler
    background; a collapsed one a uniformly red square. Readable up to a few
    hundred rows. `color_range=None` stretches the colours over the values
    present, for a matrix whose cosines all lie within a narrow band.

    Args:
        embeddings: `(n, dim)` array, the rows.
        other_embeddings: optional `(m, dim)` array, the columns; default
            `embeddings` itself (the self-similarity, 1 on the diagonal).
        title: the axes' title.
        xlabel, ylabel: axis labels (default "other" / "embeddings").
        color_range: `(low, high)` similarities at the ends of the colour scale;
            None: the matrix's own minimum and maximum (for embeddings whose
            cosines all lie close together, as early in training).

    Returns:
        The matplotlib Figure; `fig.axes[0].images[0].get_array()` is the
        `(n, m)` similarity matrix.

    Example:

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> view1 = np.random.default_rng(0).normal(size=(8, 4))
    >>> view2 = view1 + 0.1
    >>> fig = plot_similarity_matrix(view1, view2)
    >>> fig.axes[0].images[0].get_array().shape
    (8, 8)
    """
    a = check_embeddings("embeddings", embeddings, allow_empty=False)
    if other_embeddings is None:
        b = a
    else:
        b = check_embeddings("other_embeddings", other_embeddings, allow_empty=False)
        if b.shape[1] != a.shape[1]:
            fail(
                "other_embeddings.shape[1]",
                f"equal to `embeddings`' feature dimension ({a.shape[1]})",
                b.shape[1],
            )
    check_string("title", title, allow_empty=True)
    if color_range is not None:
        color_range = check_pair("color_range", color_range)
    similarity = _unit_rows(a) @ _unit_rows(b).T
    low, high = color_range or (float(similarity.min()), float(similarity.max()))

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    image = ax.imshow(
        similarity, cmap="RdBu_r", vmin=low, vmax=high, interpolation="nearest"
    )
    fig.colorbar(image, ax=ax)
    ax.set_title(title)
    ax.set_xlabel(xlabel or ("embeddings" if other_embeddings is None else "other"))
    ax.set_ylabel(ylabel or "embeddings")
    fig.tight_layout()
    return fig


def _nearest(x, queries, k):
    """Indices `(len(queries), k)` of each query row's most cosine-similar rows of
    `x`, itself excluded; equal similarities in index order."""
    unit = _unit_rows(x)
    sims = unit[queries] @ unit.T
    sims[np.arange(len(queries)), queries] = -np.inf
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


def plot_nearest_neighbors(
    images,
    embeddings,
    queries=5,
    k=5,
    labels=None,
    value_range=(0, 255),
    image_size=1.4,
    class_names=None,
):
    """Draws query images and the images of their `k` nearest neighbours.

    Neighbours are the rows of `embeddings` with the highest cosine similarity to
    the query's row, the query itself excluded (equal similarities: lower index
    first). Row `r` of the figure shows query `r` then its neighbours, best
    first, each titled with its similarity; with `labels`, a neighbour's title is
    green when its label is the query's, red otherwise: the kNN classifier's
    view of the data (`keras_contrastive.evaluation.knn_classify`).

    Args:
        images: `(N, height, width, channels)` images in `value_range`.
        embeddings: `(N, dim)` embeddings of those images.
        queries: an int `q` (that many queries spread evenly over the rows:
            `numpy.linspace(0, N - 1, q)` rounded) or a list of row indices.
        k: neighbours per query (at most `N - 1`).
        labels: optional integer labels `(N,)`.
        value_range: `(low, high)` of the pixel values.
        image_size: inches per image.
        class_names: optional names indexed by label, shown in the titles.

    Returns:
        The matplotlib Figure: one row per query, `1 + k` columns. Its
        `neighbor_indices` attribute is the `(num_queries, k)` array of the
        neighbours' row indices, `query_indices` the queries'.

    Example:

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 256, (20, 8, 8, 3), "uint8")
    >>> embeddings = rng.normal(size=(20, 4))
    >>> fig = plot_nearest_neighbors(images, embeddings, queries=[0, 5], k=3)
    >>> fig.neighbor_indices.shape
    (2, 3)
    """
    images = _check_images("images", images)
    x = check_embeddings("embeddings", embeddings, allow_empty=False)
    if len(x) != len(images):
        fail(
            "embeddings.shape",
            f"({len(images)}, dim): one row per image of `images`",
            x.shape,
        )
    n = len(x)
    if n < 2:
        fail("images.shape", "(N, ...) with N >= 2", images.shape)
    k = check_int("k", k, minimum=1, maximum=n - 1)
    if is_int(queries):
        count = check_int("queries", queries, minimum=1, maximum=n)
        query_rows = np.unique(np.round(np.linspace(0, n - 1, count)).astype(int))
    else:
        query_rows = to_numpy(queries).reshape(-1) if queries is not None else None
        if (
            query_rows is None
            or query_rows.size == 0
            or not np.issubdtype(query_rows.dtype, np.integer)
        ):
            fail(
                "queries",
                "an int or a non-empty list of row indices",
                summarize(queries),
                TypeError,
            )
        if query_rows.min() < 0 or query_rows.max() >= n:
            fail("queries", f"row indices in [0, {n - 1}]", summarize(queries))
        query_rows = query_rows.astype(int)
    if labels is not None:
        labels = check_labels("labels", labels, n, "embeddings")
    if class_names is not None and labels is None:
        fail("labels", "given when `class_names` is", None)
    class_names = _check_class_names(class_names, labels)
    value_range = _check_value_range(value_range)
    image_size = _check_inches(image_size)
    neighbors, sims = _nearest(x, query_rows, k)

    def name(row):
        return class_names[labels[row]] if class_names else str(labels[row])

    plt = _pyplot()
    fig, axes = plt.subplots(
        len(query_rows),
        1 + k,
        figsize=(image_size * (1 + k), image_size * len(query_rows)),
        squeeze=False,
    )
    for row, query in enumerate(query_rows):
        title = "query" if labels is None else f"query: {name(query)}"
        _show_image(axes[row, 0], _displayable(images[query], value_range), title)
        for col in range(k):
            index = neighbors[row, col]
            color, title = None, f"{sims[row, col]:.3f}"
            if labels is not None:
                color = "tab:green" if labels[index] == labels[query] else "tab:red"
                if class_names:
                    title = f"{name(index)} {title}"
            _show_image(
                axes[row, col + 1],
                _displayable(images[index], value_range),
                title,
                color,
            )
    fig.tight_layout()
    fig.neighbor_indices = neighbors
    fig.query_indices = query_rows
    return fig


# ----------------------------------------------------------------------------------
# TensorBoard's Embedding Projector.

#: TensorBoard's limit on a sprite image's side, in pixels.
MAX_SPRITE_SIDE = 8192


def export_to_tensorboard_projector(
    embeddings,
    labels,
    log_dir,
    images=None,
    class_names=None,
    tensor_name="embeddings",
    value_range=(0, 255),
):
    """Writes embeddings for TensorBoard's Embedding Projector (no TensorFlow).

    Files in `log_dir` (created if needed), which `tensorboard --logdir log_dir`
    shows under "Projector" (PCA, t-SNE and UMAP views, nearest neighbours by
    cosine, points coloured by label):

    - `embeddings.tsv`: one row per embedding, tab-separated values;
    - `metadata.tsv`: the labels, one per line (no header); with `class_names`
      two columns `label` and `class` under a header line (the format the
      projector reads for several columns);
    - `sprite.png` (with `images`): the images tiled in row-major order on a
      square grid, each thumbnail `single_image_dim` pixels (the image size,
      shrunk so that the sprite stays within 8,192 pixels a side);
    - `projector_config.pbtxt`: the `ProjectorConfig` text proto naming them.

    Args:
        embeddings: `(N, dim)` array.
        labels: integer labels `(N,)`, or None for no metadata.
        log_dir: the folder to write into (a TensorBoard log directory).
        images: optional `(N, height, width, channels)` images in `value_range`
            for the sprite (1 or 3 channels; 4 drops alpha).
        class_names: optional names indexed by label (a second metadata column).
        tensor_name: the name the projector shows for the tensor.
        value_range: `(low, high)` of the pixel values of `images`.

    Returns:
        A dict of the written paths: `"tensor"`, `"config"`, and `"metadata"`
        and `"sprite"` when written.

    Example:

    >>> import os, tempfile
    >>> import numpy as np
    >>> log_dir = tempfile.mkdtemp()
    >>> paths = export_to_tensorboard_projector(np.eye(3), [0, 1, 1], log_dir)
    >>> sorted(os.listdir(log_dir))
    ['embeddings.tsv', 'metadata.tsv', 'projector_config.pbtxt']
    """
    x = check_embeddings("embeddings", embeddings, allow_empty=False)
    if labels is not None:
        labels = check_labels("labels", labels, len(x), "embeddings")
    if class_names is not None and labels is None:
        fail("labels", "given when `class_names` is", None)
    class_names = _check_class_names(class_names, labels)
    for name in class_names or ():
        if "\t" in name or "\n" in name:
            fail("class_names", "names without tabs or line breaks", name)
    if images is not None:
        images = _check_images("images", images)
        if len(images) != len(x):
            fail(
                "images.shape",
                f"({len(x)}, height, width, channels): one image per embedding",
                images.shape,
            )
    tensor_name = check_string("tensor_name", tensor_name)
    if '"' in tensor_name or "\\" in tensor_name or "\n" in tensor_name:
        fail(
            "tensor_name",
            "a name without quotes, backslashes or line breaks",
            tensor_name,
        )
    value_range = _check_value_range(value_range)
    log_dir = os.fspath(log_dir)
    os.makedirs(log_dir, exist_ok=True)

    paths = {"tensor": os.path.join(log_dir, "embeddings.tsv")}
    np.savetxt(paths["tensor"], x, delimiter="\t", fmt="%.8g")
    lines = [f'  tensor_name: "{tensor_name}"', '  tensor_path: "embeddings.tsv"']
    if labels is not None:
        paths["metadata"] = os.path.join(log_dir, "metadata.tsv")
        with open(paths["metadata"], "w", encoding="utf-8") as file:
            if class_names is None:
                file.writelines(f"{label}\n" for label in labels)
            else:
                file.write("label\tclass\n")
                file.writelines(f"{label}\t{class_names[label]}\n" for label in labels)
        lines.append('  metadata_path: "metadata.tsv"')
    if images is not None:
        paths["sprite"] = os.path.join(log_dir, "sprite.png")
        height, width = _write_sprite(paths["sprite"], images, value_range)
        lines += [
            "  sprite {",
            '    image_path: "sprite.png"',
            f"    single_image_dim: {width}",
            f"    single_image_dim: {height}",
            "  }",
        ]
    paths["config"] = os.path.join(log_dir, "projector_config.pbtxt")
    with open(paths["config"], "w", encoding="utf-8") as file:
        file.write("embeddings {\n" + "\n".join(lines) + "\n}\n")
    return paths


def _sprite_tile_size(num_images, height, width):
    """(height, width) of one thumbnail: the image's, shrunk to fit the sprite."""
    grid = int(np.ceil(np.sqrt(num_images)))
    scale = min(1.0, MAX_SPRITE_SIDE / (grid * max(height, width)))
    return max(1, int(height * scale)), max(1, int(width * scale))


def _write_sprite(path, images, value_range):
    """Tiles `images` row-major on a square grid and saves a PNG; the tile size."""
    from PIL import Image

    num, height, width, channels = images.shape
    tile_h, tile_w = _sprite_tile_size(num, height, width)
    grid = int(np.ceil(np.sqrt(num)))
    pixels = np.round(255 * _displayable(images, value_range)).astype(np.uint8)
    if channels == 4:
        pixels = pixels[..., :3]
    mode = "L" if channels == 1 else "RGB"
    sprite = np.zeros((grid * tile_h, grid * tile_w, 1 if mode == "L" else 3), np.uint8)
    for i, image in enumerate(pixels):
        tile = Image.fromarray(image[..., 0] if mode == "L" else image)
        if (tile_h, tile_w) != (height, width):
            tile = tile.resize((tile_w, tile_h), Image.Resampling.BILINEAR)
        row, col = divmod(i, grid)
        sprite[row * tile_h : (row + 1) * tile_h, col * tile_w : (col + 1) * tile_w] = (
            np.asarray(tile).reshape(tile_h, tile_w, -1)
        )
    Image.fromarray(sprite[..., 0] if mode == "L" else sprite).save(path)
    return tile_h, tile_w
