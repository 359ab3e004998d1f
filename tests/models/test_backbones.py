"""image_backbone_encoder: each preprocessing mode against keras.applications'
own `preprocess_input`, a keras.applications model trained inside SimCLR and
saved, freezing the backbone, bad arguments.

A keras.applications model is built once (VGG16 with weights=None at 32x32: it
has the fewest layers of them, so the JAX training step compiles fastest); the
freezing tests use a small conv/batch-norm backbone of the same shape.
"""

import os

import keras
import numpy as np
import pytest
from keras.applications import imagenet_utils

from keras_contrastive.layers import ProjectionHead
from keras_contrastive.models import SimCLR, image_backbone_encoder
from keras_contrastive.models.backbones import ReverseChannels, preprocessing_layers


def images(rng, n=4, size=8):
    return rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def flatten_backbone(size=8):
    """A backbone returning its (preprocessed) input, flattened to 2-D."""
    return keras.Sequential(
        [keras.Input((size, size, 3)), keras.layers.Flatten()], name="flatten"
    )


def conv_backbone(size=16):
    """A small stand-in for a keras.applications model: 4-D feature map out."""
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(8, 3, strides=2, use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Conv2D(16, 3, strides=2),
        ],
        name="conv_backbone",
    )


def numpy_weights(layer):
    return [keras.ops.convert_to_numpy(w).copy() for w in layer.weights]


def changed(before, after):
    return [not np.allclose(b, a) for b, a in zip(before, after)]


@pytest.mark.parametrize("mode", ["caffe", "torch", "tf"])
def test_preprocessing_matches_keras_applications(rng, mode):
    x = images(rng)
    encoder = image_backbone_encoder(flatten_backbone(), preprocessing=mode)
    expected = imagenet_utils.preprocess_input(
        x.astype("float32"), data_format="channels_last", mode=mode
    )
    got = keras.ops.convert_to_numpy(encoder(x.astype("float32")))
    np.testing.assert_allclose(got, expected.reshape(len(x), -1), rtol=1e-5, atol=1e-4)
    # uint8 images (as a dataset holds them) give the same features.
    np.testing.assert_allclose(encoder.predict(x, verbose=0), got, rtol=1e-6)


@pytest.mark.parametrize("mode", [None, "none"])
def test_no_preprocessing_passes_images_through(rng, mode):
    x = images(rng).astype("float32")
    encoder = image_backbone_encoder(flatten_backbone(), preprocessing=mode)
    assert preprocessing_layers(mode) == []
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(encoder(x)), x.reshape(len(x), -1)
    )


def test_a_layer_as_preprocessing(rng):
    x = images(rng).astype("float32")
    scale = keras.layers.Rescaling(1 / 255, name="my_scale")
    encoder = image_backbone_encoder(flatten_backbone(), preprocessing=scale)
    assert encoder.get_layer("my_scale") is scale
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(encoder(x)), x.reshape(len(x), -1) / 255, rtol=1e-6
    )


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_pooling_of_a_feature_map(rng, pooling):
    x = images(rng, size=16).astype("float32")
    backbone = conv_backbone()
    encoder = image_backbone_encoder(backbone, preprocessing="tf", pooling=pooling)
    assert encoder.output_shape == (None, 16)
    assert encoder.name == "conv_backbone_encoder"
    feature_map = keras.ops.convert_to_numpy(backbone(x / 127.5 - 1))
    reduce = {"avg": np.mean, "max": np.max}[pooling]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(encoder(x)),
        reduce(feature_map, axis=(1, 2)),
        rtol=1e-4,
        atol=1e-5,
    )


def test_input_shape_from_argument_for_a_plain_layer(rng):
    conv = keras.layers.Conv2D(4, 3)  # a layer: no input shape to read
    with pytest.raises(ValueError, match="`input_shape`"):
        image_backbone_encoder(conv, preprocessing="tf")
    encoder = image_backbone_encoder(
        conv, preprocessing="tf", input_shape=(None, None, 3), name="enc"
    )
    assert encoder.name == "enc"
    assert encoder(images(rng, size=12).astype("float32")).shape == (4, 4)


def test_keras_applications_model_fine_tunes_in_simclr_and_round_trips(rng, tmp_path):
    backbone = keras.applications.VGG16(
        input_shape=(32, 32, 3), include_top=False, weights=None
    )
    encoder = image_backbone_encoder(backbone, preprocessing="caffe")
    assert encoder.output_shape == (None, 512)
    assert encoder.get_layer(backbone.name) is backbone
    x = images(rng, n=4, size=32)
    # The encoder is keras.applications' own recipe, pooled. (Direct calls,
    # not `predict`: no function to compile on JAX.)
    reference = backbone(imagenet_utils.preprocess_input(x.astype("float32")))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(encoder(x.astype("float32"))),
        keras.ops.convert_to_numpy(keras.ops.mean(reference, axis=(1, 2))),
        rtol=1e-4,
        atol=1e-4,
    )

    model = SimCLR(
        encoder,
        projection_head=ProjectionHead(hidden_dims=(16,), output_dim=8),
        augmenter=keras.layers.RandomFlip("horizontal"),
    )
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    before = numpy_weights(backbone)
    history = model.fit(x, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(changed(before, numpy_weights(backbone)))

    path = os.path.join(tmp_path, "encoder.keras")
    model.encoder.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.get_layer("rgb_to_bgr"), ReverseChannels)
    x = x.astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded(x)),
        keras.ops.convert_to_numpy(model.encoder(x)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_a_frozen_backbone_stays_fixed_while_the_head_trains(rng):
    backbone = conv_backbone()
    encoder = image_backbone_encoder(backbone, preprocessing="torch")
    model = SimCLR(
        encoder,
        projection_head=ProjectionHead(hidden_dims=(16,), output_dim=8),
        augmenter=keras.layers.RandomFlip("horizontal"),
    )
    x = images(rng, n=8, size=16)
    model.build(x.shape)
    backbone.trainable = False
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    frozen, head = numpy_weights(backbone), numpy_weights(model.projection_head)
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    # Trainable and batch-norm statistics alike: a frozen BatchNormalization
    # runs in inference mode.
    assert not any(changed(frozen, numpy_weights(backbone)))
    assert any(changed(head, numpy_weights(model.projection_head)))

    # Unfrozen (and compiled again) it trains.
    backbone.trainable = True
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    assert any(changed(frozen, numpy_weights(backbone)))


def test_bad_arguments():
    with pytest.raises(TypeError, match="`backbone` must be a Keras model or layer"):
        image_backbone_encoder(lambda x: x, preprocessing="tf")
    with pytest.raises(ValueError, match="`preprocessing` must be one of"):
        image_backbone_encoder(flatten_backbone(), preprocessing="imagenet")
    with pytest.raises(TypeError, match="`preprocessing` must be one of"):
        image_backbone_encoder(flatten_backbone(), preprocessing=1 / 255)
    with pytest.raises(ValueError, match="`pooling` must be one of"):
        image_backbone_encoder(flatten_backbone(), preprocessing="tf", pooling=None)
    with pytest.raises(ValueError, match="`input_shape` must be a tuple"):
        image_backbone_encoder(
            flatten_backbone(), preprocessing="tf", input_shape=(8, 8)
        )
    tokens = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Reshape((64, 3))], name="tokens"
    )
    with pytest.raises(ValueError, match=r"`backbone` must be .*4-D.*2-D"):
        image_backbone_encoder(tokens, preprocessing="tf")


def test_reverse_channels_config_round_trips():
    layer = ReverseChannels(name="flip")
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, ReverseChannels) and restored.name == "flip"
