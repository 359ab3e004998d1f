"""image_folder_dataset: the pixels of load_image_folder, streamed through tf.data."""

import numpy as np
import pytest
from PIL import Image

from keras_contrastive.datasets import image_folder_dataset, load_image_folder


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def folder(tmp_path, rng):
    for name in ("dog/a.png", "cat/b.png", "cat/a.PNG", "cat/nested/c.png", "d.png"):
        _write(tmp_path / name, rng.integers(0, 256, (9, 7, 3)).astype("uint8"))
    _write(tmp_path / ".ipynb_checkpoints" / "x.png", np.zeros((2, 2, 3), "uint8"))
    (tmp_path / "cat" / "._b.png").write_bytes(b"AppleDouble, not an image")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    return tmp_path


def _all(dataset):
    batches = list(dataset.as_numpy_iterator())
    if isinstance(batches[0], tuple):
        return tuple(np.concatenate(part) for part in zip(*batches))
    return np.concatenate(batches)


def test_labelled_stream_equals_load_image_folder(folder):
    images, labels, names = load_image_folder(folder, image_size=(5, 4))
    dataset = image_folder_dataset(
        folder, image_size=(5, 4), batch_size=3, shuffle=False
    )
    streamed, streamed_labels = _all(dataset)
    assert streamed.dtype == np.uint8 and streamed.shape == (4, 5, 4, 3)
    np.testing.assert_array_equal(streamed, images)
    np.testing.assert_array_equal(streamed_labels, labels)
    assert dataset.class_names == names == ["cat", "dog"]
    assert [p.replace(str(folder), "") for p in dataset.file_paths] == [
        "/cat/a.PNG",
        "/cat/b.png",
        "/cat/nested/c.png",
        "/dog/a.png",
    ]


def test_unlabeled_stream_reads_every_image_under_the_folder(folder):
    dataset = image_folder_dataset(
        folder,
        labels=None,
        image_size=(5, 4),
        batch_size=2,
        shuffle=False,
        color_mode="grayscale",
    )
    images = _all(dataset)
    assert images.shape == (5, 5, 4, 1)
    # A folder's files (sorted) before its sub-folders (sorted), as os.walk.
    assert [p.replace(str(folder), "") for p in dataset.file_paths] == [
        "/d.png",
        "/cat/a.PNG",
        "/cat/b.png",
        "/cat/nested/c.png",
        "/dog/a.png",
    ]
    expected = Image.open(folder / "d.png").convert("L")
    expected = np.asarray(expected.resize((4, 5), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(images[0, :, :, 0], expected)
    assert dataset.class_names is None


def test_shuffle_keeps_images_with_their_labels_and_reshuffles(folder):
    images, labels, _ = load_image_folder(folder, image_size=(5, 4))
    dataset = image_folder_dataset(folder, image_size=(5, 4), batch_size=None, seed=3)
    orders = []
    for _ in range(4):
        order = []
        for image, label in dataset.as_numpy_iterator():
            match = [i for i in range(len(images)) if np.array_equal(images[i], image)]
            assert len(match) == 1 and labels[match[0]] == label
            order.append(match[0])
        orders.append(order)
    assert all(sorted(order) == [0, 1, 2, 3] for order in orders)
    assert len({tuple(order) for order in orders}) > 1


def test_compute_embeddings_and_fit_take_the_stream(folder):
    import keras

    from keras_contrastive.evaluation import compute_embeddings
    from keras_contrastive.layers import ProjectionHead
    from keras_contrastive.models import SimCLR

    dataset = image_folder_dataset(folder, labels=None, image_size=(8, 8), batch_size=2)
    encoder = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D()]
    )
    features = compute_embeddings(encoder, dataset)
    # The per-image channel means (0..255: uint8 values cast, not rescaled).
    images = _all(
        image_folder_dataset(folder, labels=None, image_size=(8, 8), shuffle=False)
    )
    reference = images.astype("float32").mean(axis=(1, 2))
    order = np.lexsort(features.T)
    np.testing.assert_allclose(
        features[order], reference[np.lexsort(reference.T)], rtol=1e-5
    )
    # A contrastive model trains on the unlabeled stream (an identity augmenter
    # keeps the compiled step small).
    model = SimCLR(
        keras.Sequential(
            [keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D()]
        ),
        projection_head=ProjectionHead(hidden_dims=(4,), output_dim=4),
        augmenter=keras.layers.Identity(),
    )
    model.compile(optimizer="adam")
    history = model.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_errors(folder, tmp_path):
    with pytest.raises(ValueError, match='`labels` must be "inferred" or None'):
        image_folder_dataset(folder, labels="int")
    with pytest.raises(TypeError, match="`image_size` must be a pair"):
        image_folder_dataset(folder, image_size=None)
    with pytest.raises(ValueError, match="`class_names` must be None when"):
        image_folder_dataset(folder, labels=None, class_names=["cat"])
    with pytest.raises(FileNotFoundError, match="`path` must be a folder of images"):
        image_folder_dataset(tmp_path / "missing", labels=None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No images"):
        image_folder_dataset(tmp_path / "empty", labels=None)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"not a png")
    dataset = image_folder_dataset(broken, labels=None, shuffle=False)
    with pytest.raises(Exception, match="Could not read image .*x.png"):
        list(dataset.as_numpy_iterator())
