"""CLIP and SigLIP (`keras_contrastive.models.CLIP`): losses against float64 NumPy,
the learnable logit scale and its cap, gradient caching, inputs, freezing, saving,
encoding, errors, and a short fit on real image-caption pairs.

The harness (tests/methods/test_harness.py, entries "clip" and "clip_sigmoid")
adds the shared checks: NumPy / tf.data / PyDataset inputs, save/load and
BackupAndRestore, mixed precision, bad input; tests/distribute the 4-device
equality of a step.
"""

import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_contrastive.models import CLIP, ImageTextPairs
from tests.methods.helpers import cifar_sample, to_numpy, unit

BACKEND = keras.backend.backend()
N, DIM, TEXT_DIM = 8, 4, 5
LOG_MAX = math.log(100.0)


class GradientProbe(keras.optimizers.Optimizer):
    """Sets every trainable variable to its gradient: one step reads them out."""

    def __init__(self):
        super().__init__(learning_rate=1.0)

    def update_step(self, gradient, variable, learning_rate):
        self.assign(variable, ops.cast(gradient, variable.dtype))


def flat_tower(size=2, channels=1, units=3):
    """images -> flatten -> x W: features NumPy can compute."""
    return keras.Sequential(
        [
            keras.Input((size, size, channels)),
            keras.layers.Flatten(),
            keras.layers.Dense(units, use_bias=False),
        ]
    )


def text_tower(units=3):
    """Float "text" vectors (TEXT_DIM,) -> x W."""
    return keras.Sequential(
        [keras.Input((TEXT_DIM,)), keras.layers.Dense(units, use_bias=False)]
    )


def bag_tower(vocabulary=16, length=5):
    """Token ids -> mean of their embeddings."""
    return keras.Sequential(
        [
            keras.Input((length,), dtype="int32"),
            keras.layers.Embedding(vocabulary, 8),
            keras.layers.GlobalAveragePooling1D(),
        ]
    )


def pairs(rng, n=N):
    images = rng.normal(size=(n, 2, 2, 1)).astype("float32")
    texts = rng.normal(size=(n, TEXT_DIM)).astype("float32")
    return images, texts


def linear_clip(loss="softmax", **kwargs):
    return CLIP(flat_tower(), text_tower(), embed_dim=DIM, loss=loss, **kwargs)


def weights(layer):
    return [to_numpy(w).astype(np.float64) for w in layer.weights]


def numpy_embeddings(model, images, texts):
    (w_image,) = weights(model.image_encoder.layers[-1])
    (w_text,) = weights(model.text_encoder.layers[-1])
    (p_image,) = weights(model.image_projection)
    (p_text,) = weights(model.text_projection)
    features_image = np.asarray(images, np.float64).reshape(len(images), -1) @ w_image
    features_text = np.asarray(texts, np.float64) @ w_text
    return unit(features_image @ p_image), unit(features_text @ p_text)


def logsumexp(x, axis):
    top = x.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.exp(x - top).sum(axis=axis))


def numpy_softmax_loss(z_image, z_text, scale):
    """CLIP's loss (Radford et al. 2021, fig. 3), float64."""
    logits = scale * z_image @ z_text.T
    diagonal = np.diag(logits)
    image_to_text = logsumexp(logits, 1) - diagonal
    text_to_image = logsumexp(logits, 0) - diagonal
    return float(np.mean((image_to_text + text_to_image) / 2))


def numpy_sigmoid_loss(z_image, z_text, scale, bias):
    """SigLIP's loss (Zhai et al. 2023, Algorithm 1), float64."""
    logits = scale * z_image @ z_text.T + bias
    labels = 2 * np.eye(len(logits)) - 1
    return float(-np.sum(-np.logaddexp(0, -labels * logits)) / len(logits))


def numpy_loss(model, images, texts, log_scale=None, bias=None):
    z_image, z_text = numpy_embeddings(model, images, texts)
    log_scale = float(to_numpy(model.log_scale)) if log_scale is None else log_scale
    scale = math.exp(min(log_scale, LOG_MAX))
    if model.loss_type == "softmax":
        return numpy_softmax_loss(z_image, z_text, scale)
    bias = float(to_numpy(model.logit_bias)) if bias is None else bias
    return numpy_sigmoid_loss(z_image, z_text, scale, bias)


# ---------------------------------------------------------------- the losses


@pytest.mark.parametrize("loss", ["softmax", "sigmoid"])
def test_loss_matches_numpy_and_is_symmetric(loss, rng):
    model = linear_clip(loss)
    images, texts = pairs(rng)
    model.build_for((images, texts))
    model.log_scale.assign(math.log(7.0))
    if loss == "sigmoid":
        model.logit_bias.assign(-2.5)
    model.compile()
    logged = model.evaluate((images, texts), batch_size=N, verbose=0, return_dict=True)
    expected = numpy_loss(model, images, texts)
    np.testing.assert_allclose(logged["loss"], expected, rtol=1e-5)
    np.testing.assert_allclose(logged["logit_scale"], 7.0, rtol=1e-6)

    # Swapping the roles of images and texts leaves both losses unchanged.
    outputs = model.forward_pass((images, texts))
    swapped = {"z_a": outputs["z_b"], "z_b": outputs["z_a"]}
    np.testing.assert_allclose(
        to_numpy(model.compute_contrastive_loss(swapped)),
        to_numpy(model.compute_contrastive_loss(outputs)),
        rtol=1e-6,
    )
    z_image, z_text = numpy_embeddings(model, images, texts)
    np.testing.assert_allclose(to_numpy(outputs["z_a"]), z_image, atol=1e-6)
    np.testing.assert_allclose(to_numpy(outputs["z_b"]), z_text, atol=1e-6)


def test_initial_scale_and_bias():
    softmax = linear_clip()
    sigmoid = linear_clip("sigmoid")
    custom = linear_clip("sigmoid", initial_scale=3.0, initial_bias=-4.0)
    images, texts = pairs(np.random.default_rng(0))
    for model in (softmax, sigmoid, custom):
        model.build_for((images, texts))
    # CLIP: 1 / 0.07; SigLIP: t' = log 10, b = -10.
    np.testing.assert_allclose(float(to_numpy(softmax.logit_scale)), 1 / 0.07, 1e-6)
    np.testing.assert_allclose(float(to_numpy(sigmoid.log_scale)), math.log(10), 1e-6)
    assert float(to_numpy(sigmoid.logit_bias)) == -10.0
    assert softmax.logit_bias is None
    np.testing.assert_allclose(float(to_numpy(custom.logit_scale)), 3.0, 1e-6)
    assert float(to_numpy(custom.logit_bias)) == -4.0


@pytest.mark.parametrize("loss", ["softmax", "sigmoid"])
def test_logit_scale_and_bias_receive_their_gradients(loss, rng):
    model = linear_clip(loss)
    images, texts = pairs(rng)
    model.build_for((images, texts))
    log_scale = float(to_numpy(model.log_scale))
    bias = float(to_numpy(model.logit_bias)) if loss == "sigmoid" else None
    # Central differences of the float64 NumPy loss.
    eps = 1e-4
    expected = (
        numpy_loss(model, images, texts, log_scale + eps, bias)
        - numpy_loss(model, images, texts, log_scale - eps, bias)
    ) / (2 * eps)
    if loss == "sigmoid":
        expected_bias = (
            numpy_loss(model, images, texts, log_scale, bias + eps)
            - numpy_loss(model, images, texts, log_scale, bias - eps)
        ) / (2 * eps)
    # A small SGD step reads the gradients out (a probe setting the variable to
    # its gradient would meet the cap on log t).
    learning_rate = 1e-3
    model.compile(optimizer=keras.optimizers.SGD(learning_rate))
    model.fit((images, texts), batch_size=N, epochs=1, shuffle=False, verbose=0)
    assert abs(expected) > 1e-3
    gradient = (log_scale - float(to_numpy(model.log_scale))) / learning_rate
    np.testing.assert_allclose(gradient, expected, rtol=1e-3)
    if loss == "sigmoid":
        assert abs(expected_bias) > 1e-3
        gradient = (bias - float(to_numpy(model.logit_bias))) / learning_rate
        np.testing.assert_allclose(gradient, expected_bias, rtol=1e-3)


def aligned_model(initial_scale):
    """Both towers see the same vectors and project them identically: every
    positive pair has cosine 1, so a larger scale always lowers the loss."""
    model = CLIP(
        keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten()]),
        keras.Sequential([keras.Input((4,)), keras.layers.Identity()]),
        embed_dim=4,
        initial_scale=initial_scale,
    )
    vectors = np.random.default_rng(3).normal(size=(N, 4)).astype("float32")
    images = vectors.reshape(N, 2, 2, 1)
    model.build_for((images, vectors))
    model.image_projection.kernel.assign(np.eye(4, dtype="float32"))
    model.text_projection.kernel.assign(np.eye(4, dtype="float32"))
    return model, (images, vectors)


def test_logit_scale_is_capped_at_100():
    model, data = aligned_model(90.0)
    model.compile(optimizer=GradientProbe())
    model.fit(data, batch_size=N, epochs=1, verbose=0)
    gradient = float(to_numpy(model.log_scale))
    assert gradient < 0  # descent would raise the scale

    model, data = aligned_model(90.0)
    learning_rate = 10 * (LOG_MAX - math.log(90.0)) / -gradient  # 10x past the cap
    model.compile(optimizer=keras.optimizers.SGD(learning_rate))
    history = model.fit(data, batch_size=N, epochs=3, verbose=0)
    # Clipped after every step: the variable sits exactly at log 100.
    np.testing.assert_allclose(float(to_numpy(model.log_scale)), LOG_MAX, rtol=1e-7)
    assert max(history.history["logit_scale"]) <= 100.0 * (1 + 1e-6)
    np.testing.assert_allclose(history.history["logit_scale"][-1], 100.0, rtol=1e-5)

    # Reading clamps too (a value assigned past the cap, e.g. from a checkpoint).
    model.log_scale.assign(math.log(250.0))
    np.testing.assert_allclose(float(to_numpy(model.logit_scale)), 100.0, rtol=1e-6)


def test_fixed_temperature_is_not_trained(rng):
    model = linear_clip(learn_temperature=False, temperature=0.5)
    images, texts = pairs(rng)
    model.compile(optimizer=keras.optimizers.SGD(1.0))
    model.fit((images, texts), batch_size=N, epochs=2, verbose=0)
    assert not any(v is model.log_scale for v in model.trainable_variables)
    np.testing.assert_allclose(float(to_numpy(model.logit_scale)), 2.0, rtol=1e-6)


# ---------------------------------------------------------------- gradient cache


@pytest.mark.parametrize("loss", ["softmax", "sigmoid"])
def test_gradient_cache_equals_the_plain_step(loss, rng):
    images, texts = pairs(rng, 12)
    keras.utils.set_random_seed(5)
    plain = linear_clip(loss)
    plain.build_for((images, texts))
    start = [to_numpy(v) for v in plain.variables]
    cached = linear_clip(loss, gradient_cache=4)  # 3 chunks
    cached.build_for((images, texts))
    for variable, value in zip(cached.variables, start):
        variable.assign(value)
    gradients = {}
    for name, model in (("plain", plain), ("cached", cached)):
        # SGD with rate 1: each trainable variable moves by minus its gradient
        # (the log scale stays below its cap, which would hide its gradient).
        before = [to_numpy(v) for v in model.trainable_variables]
        model.compile(optimizer=keras.optimizers.SGD(1.0))
        logs = model.fit((images, texts), batch_size=12, epochs=1, verbose=0)
        gradients[name] = [
            b - to_numpy(v) for b, v in zip(before, model.trainable_variables)
        ]
        gradients[name + "_loss"] = logs.history["loss"][0]
    np.testing.assert_allclose(gradients["cached_loss"], gradients["plain_loss"], 1e-6)
    assert len(gradients["plain"]) == (6 if loss == "sigmoid" else 5)
    (index,) = [
        i for i, v in enumerate(plain.trainable_variables) if v is plain.log_scale
    ]
    assert abs(float(gradients["plain"][index])) > 1e-3  # the scale has a gradient
    for a, b in zip(gradients["cached"], gradients["plain"]):
        scale = max(float(np.max(np.abs(b))), 1e-3)
        assert float(np.max(np.abs(a - b))) / scale < 1e-5


# ---------------------------------------------------------------- inputs


def tiny_sentence_encoder():
    from tests.text._tiny import tiny_encoder

    return tiny_encoder(sequence_length=12)


def tiny_images(rng, n=N, size=8):
    return rng.integers(0, 256, (n, size, size, 3)).astype("uint8")


def conv_tower(size=8):
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, strides=2),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )


SENTENCES = [
    "a man is playing guitar",
    "a dog sat on the mat",
    "the cat is eating",
    "a woman walks",
    "the quick brown fox",
    "a cat sat on a mat",
    "dogs run",
    "hello world",
]


def sentence_tokenizer(length=5, vocabulary=16):
    """Word ids (hashed into `vocabulary`), padded to `length`."""
    words = sorted({w for t in SENTENCES for w in t.split()})

    def tokenize(batch):
        ids = [
            [words.index(w) % (vocabulary - 1) + 1 for w in t.split()] for t in batch
        ]
        return np.array([(row + [0] * length)[:length] for row in ids], "int32")

    return tokenize


def bag_clip(**kwargs):
    return CLIP(
        conv_tower(),
        bag_tower(),
        embed_dim=DIM,
        tokenizer=sentence_tokenizer(),
        **kwargs,
    )


def test_strings_in_every_form_train_alike(rng):
    """(images, strings) as a pair, as fit(images, texts), as a dict, as an
    ImageTextPairs and as a PyDataset of (images, strings) batches: the same
    batches give the same losses (shuffle off, SGD)."""
    images = tiny_images(rng)
    texts = list(SENTENCES)

    class StringBatches(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return images[4 * i : 4 * i + 4], texts[4 * i : 4 * i + 4]

    losses = []
    for kind in ("pair", "x_y", "dict", "image_text_pairs", "py_dataset"):
        keras.utils.set_random_seed(0)
        model = bag_clip()
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        fit = dict(epochs=2, verbose=0, shuffle=False)
        if kind == "pair":
            history = model.fit((images, texts), batch_size=4, **fit)
        elif kind == "x_y":
            history = model.fit(images, texts, batch_size=4, **fit)
        elif kind == "dict":
            history = model.fit({"images": images, "texts": texts}, batch_size=4, **fit)
        elif kind == "image_text_pairs":
            data = ImageTextPairs(images, texts, model.text_tokenizer(), batch_size=4)
            history = model.fit(data, **fit)
        else:
            history = model.fit(StringBatches(), **fit)
        losses.append(history.history["loss"])
    for other in losses[1:]:
        np.testing.assert_allclose(other, losses[0], rtol=1e-5)


@pytest.mark.parametrize("drop_last", [None, False])
@pytest.mark.parametrize("texts_as", ["strings", "tokens"])
def test_fit_drops_the_partial_last_batch(rng, drop_last, texts_as):
    # As open_clip's training loader does; evaluation keeps every pair.
    images = tiny_images(rng)
    model = bag_clip()
    texts = list(SENTENCES)
    if texts_as == "tokens":
        texts = model.text_tokenizer()(texts)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit((images, texts), batch_size=3, epochs=1, verbose=0, drop_last=drop_last)
    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    assert steps == (len(images) // 3 if drop_last is None else -(-len(images) // 3))
    pairs = ImageTextPairs(images, list(SENTENCES), model.text_tokenizer(), 3)
    dropping = ImageTextPairs(
        images, list(SENTENCES), model.text_tokenizer(), 3, drop_last=True
    )
    assert (len(pairs), len(dropping)) == (-(-len(images) // 3), len(images) // 3)


def test_tf_data_of_strings_is_tokenised_in_the_pipeline(rng):
    import tensorflow as tf

    images = tiny_images(rng)
    results = []
    for kind in ("numpy", "tf_data"):
        keras.utils.set_random_seed(0)
        model = CLIP(conv_tower(), tiny_sentence_encoder(), embed_dim=DIM)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        if kind == "numpy":
            history = model.fit(
                (images, SENTENCES), batch_size=4, epochs=1, shuffle=False, verbose=0
            )
        else:
            data = tf.data.Dataset.from_tensor_slices((images, SENTENCES)).batch(4)
            history = model.fit(data, epochs=1, verbose=0)
        results.append(history.history["loss"])
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5)


def test_shuffled_strings_are_reproducible(rng):
    images = tiny_images(rng)
    losses = []
    for _ in range(2):
        keras.utils.set_random_seed(3)
        model = bag_clip()
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        history = model.fit((images, SENTENCES), batch_size=4, epochs=2, verbose=0)
        losses.append(history.history["loss"])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-6)


def test_validation_split_and_data_with_strings(rng):
    images = tiny_images(rng, 16)
    texts = SENTENCES * 2
    model = bag_clip()
    model.compile(optimizer="adam")
    history = model.fit(
        (images, texts), batch_size=4, epochs=1, validation_split=0.25, verbose=0
    )
    assert "val_loss" in history.history
    history = model.fit(
        (images[:8], texts[:8]),
        batch_size=4,
        epochs=1,
        validation_data=(images[8:12], texts[8:12]),
        verbose=0,
    )
    assert np.isfinite(history.history["val_loss"][0])


def test_custom_tokenizer_feeds_strings_to_a_token_id_tower(rng):
    words = {}

    def tokenize(batch):
        ids = [
            [words.setdefault(w, len(words) + 1) % 16 for w in t.split()] for t in batch
        ]
        return np.array([(row + [0] * 5)[:5] for row in ids], "int32")

    model = CLIP(conv_tower(), bag_tower(), embed_dim=DIM, tokenizer=tokenize)
    model.compile(optimizer="adam")
    images = tiny_images(rng)
    history = model.fit((images, SENTENCES), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    embeddings = model.encode_text(SENTENCES, verbose=0)
    np.testing.assert_allclose(
        embeddings, model.encode_text(tokenize(SENTENCES), verbose=0), atol=1e-6
    )


# ---------------------------------------------------------------- freezing, LiT


def test_freezing_locks_a_tower_and_trains_its_projection(rng):
    images = tiny_images(rng)
    for frozen in ("image", "text"):
        model = bag_clip(freeze_image=frozen == "image", freeze_text=frozen == "text")
        model.build_for((images, model.text_tokenizer()(SENTENCES)))
        tower = model.image_encoder if frozen == "image" else model.text_encoder
        projection = getattr(model, f"{frozen}_projection")
        before = [to_numpy(w) for w in tower.weights]
        projection_before = to_numpy(projection.kernel)
        assert not any(
            any(v is w for w in tower.weights) for v in model.trainable_variables
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        model.fit((images, SENTENCES), batch_size=4, epochs=1, verbose=0)
        for old, new in zip(before, tower.weights):
            np.testing.assert_array_equal(old, to_numpy(new))
        assert not np.allclose(projection_before, to_numpy(projection.kernel))


def test_precomputed_text_features_train_like_the_frozen_tower(rng):
    """LiT with a locked text tower: its outputs computed once (text_features)
    give the same steps as running the tower in every step."""
    images = tiny_images(rng)
    losses = []
    for precomputed in (False, True):
        keras.utils.set_random_seed(0)
        model = CLIP(
            conv_tower(), tiny_sentence_encoder(), embed_dim=DIM, freeze_text=True
        )
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        texts = SENTENCES
        if precomputed:
            texts = {"text_features": model.text_features(SENTENCES, verbose=0)}
        history = model.fit(
            (images, texts), batch_size=4, epochs=2, shuffle=False, verbose=0
        )
        losses.append(history.history["loss"])
        if precomputed:
            np.testing.assert_allclose(
                model.encode_text(texts, verbose=0),
                model.encode_text(SENTENCES, verbose=0),
                atol=1e-5,
            )
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)


# ---------------------------------------------------------------- encode, save


def test_encode_image_and_text_are_normalised_and_batched(rng):
    images = tiny_images(rng, 10)
    model = CLIP(conv_tower(), tiny_sentence_encoder(), embed_dim=DIM)
    model.build_for((images, model.text_tokenizer()(SENTENCES[:2] * 5)))
    z_image = model.encode_image(images, batch_size=4, verbose=0)
    z_text = model.encode_text(SENTENCES, batch_size=3, verbose=0)
    assert z_image.dtype == np.float32 and z_image.shape == (10, DIM)
    assert z_text.dtype == np.float32 and z_text.shape == (8, DIM)
    np.testing.assert_allclose(np.linalg.norm(z_image, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(z_text, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        z_image, to_numpy(model.embed_images(images.astype("float32"))), atol=1e-6
    )
    np.testing.assert_allclose(
        z_image, to_numpy(model.predict(images, verbose=0)), 1e-6
    )
    tokens = model.text_tokenizer()(SENTENCES)
    np.testing.assert_allclose(z_text, to_numpy(model.embed_texts(tokens)), atol=1e-5)


def test_keras_file_round_trip_with_a_sentence_encoder(rng, tmp_path):
    images = tiny_images(rng)
    model = CLIP(conv_tower(), tiny_sentence_encoder(), embed_dim=DIM, loss="sigmoid")
    model.compile(optimizer="adam")
    model.fit((images, SENTENCES), batch_size=4, epochs=1, verbose=0)
    path = str(tmp_path / "clip.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, CLIP) and loaded.loss_type == "sigmoid"
    assert loaded.get_config()["embed_dim"] == DIM
    np.testing.assert_allclose(
        loaded.encode_text(SENTENCES, verbose=0),
        model.encode_text(SENTENCES, verbose=0),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        loaded.encode_image(images, verbose=0),
        model.encode_image(images, verbose=0),
        atol=1e-6,
    )
    for name in ("log_scale", "logit_bias"):
        assert float(to_numpy(getattr(loaded, name))) == float(
            to_numpy(getattr(model, name))
        )
    # Training goes on from the saved optimizer state.
    history = loaded.fit((images, SENTENCES), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# ---------------------------------------------------------------- errors


def test_errors_are_clear(rng):
    images = tiny_images(rng)
    with pytest.raises(ValueError, match="`loss` must be one of"):
        CLIP(conv_tower(), bag_tower(), loss="hinge")
    with pytest.raises(TypeError, match="`image_encoder` must be a Keras layer"):
        CLIP("cnn", bag_tower())
    with pytest.raises(ValueError, match="`embed_dim` must be an int >= 1"):
        CLIP(conv_tower(), bag_tower(), embed_dim=0)
    with pytest.raises(ValueError, match=r"`temperature` must be a number in \[0.01"):
        CLIP(conv_tower(), bag_tower(), temperature=0.001)
    with pytest.raises(ValueError, match="`initial_scale` must be a number in"):
        CLIP(conv_tower(), bag_tower(), initial_scale=500.0)
    with pytest.raises(ValueError, match="`temperature` must be left at 0.07"):
        CLIP(conv_tower(), bag_tower(), loss="sigmoid", temperature=0.1)

    model = CLIP(conv_tower(), bag_tower(), embed_dim=DIM)
    model.compile(optimizer="adam")
    tokens = rng.integers(1, 16, (N, 5)).astype("int32")
    with pytest.raises(ValueError, match=r"`texts` must be one text per image \(8"):
        model.fit((images, tokens[:6]), batch_size=4, verbose=0)
    with pytest.raises(ValueError, match=r"`texts` must be one text per image \(8"):
        model.fit((images, SENTENCES[:5]), batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="`tokenizer` must be given"):
        model.fit((images, SENTENCES), batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="`images` must be a batch of images"):
        model.fit((images[..., 0], tokens), batch_size=4, verbose=0)
    with pytest.raises(ValueError, match=r"`x` must be \(images, texts\) pairs"):
        model.fit(images, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="need freeze_text=True"):
        model.fit(
            (images, {"text_features": np.zeros((N, 8), "float32")}),
            batch_size=4,
            verbose=0,
        )
    with pytest.raises(TypeError, match=r"`texts\[1\]` must be a string"):
        model.fit((images, ["a"] + [None] * 7), batch_size=4, verbose=0)
    fresh = CLIP(conv_tower(), bag_tower(), embed_dim=DIM)
    with pytest.raises(ValueError, match="needs a built CLIP model"):
        fresh.encode_image(images)


# ---------------------------------------------------------------- learning


CAPTION_TEMPLATES = ("a photo of a {}", "a picture of the {}", "the {} in a photo")
WORDS = ["a", "the", "photo", "picture", "of", "in"]


def word_tokenizer(class_names, length=6):
    vocabulary = {w: i + 1 for i, w in enumerate(WORDS + list(class_names))}

    def tokenize(texts):
        ids = [[vocabulary.get(w, 0) for w in t.split()][:length] for t in texts]
        return np.array([row + [0] * (length - len(row)) for row in ids], "int32")

    return tokenize, len(vocabulary) + 1


def test_short_fit_on_image_caption_pairs_learns_zero_shot():
    """CIFAR-10 sample (16x16), captions from templates, a random embedding-bag
    text tower: the loss falls and zero-shot accuracy on held-out images (with a
    template not used in training) clears chance (10%) by far."""
    from keras_contrastive.datasets.cifar10 import CIFAR10_CLASSES
    from keras_contrastive.evaluation import zero_shot_accuracy

    (x_train, y_train), (x_test, y_test) = cifar_sample(16)
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(x_train))[:2048]
    x_train, y_train = x_train[rows], y_train[rows]
    captions = [
        CAPTION_TEMPLATES[rng.integers(3)].replace("{}", CIFAR10_CLASSES[label])
        for label in y_train
    ]
    tokenize, vocabulary = word_tokenizer(CIFAR10_CLASSES)
    keras.utils.set_random_seed(0)
    image_tower = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    text = keras.Sequential(
        [
            keras.Input((6,), dtype="int32"),
            keras.layers.Embedding(vocabulary, 32),
            keras.layers.GlobalAveragePooling1D(),
        ]
    )
    model = CLIP(image_tower, text, embed_dim=32, tokenizer=tokenize)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit((x_train, captions), batch_size=128, epochs=6, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0] - 0.3, losses
    accuracy = zero_shot_accuracy(
        model, x_test, y_test, list(CIFAR10_CLASSES), ["a {}"], batch_size=500
    )
    assert accuracy > 0.2, accuracy
