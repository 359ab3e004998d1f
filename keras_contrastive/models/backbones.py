"""`image_backbone_encoder`: a pretrained image backbone as a contrastive encoder.

The image methods (SimCLR, MoCo, BYOL, ...) augment raw images in `value_range`
(0, 255) inside the training step and hand the views to the encoder, which must
return 2-D `(batch, features)`. A `keras.applications` model or a keras-hub
backbone expects its own preprocessing instead (ResNet50 wants BGR images minus
the ImageNet mean, MobileNetV2 wants [-1, 1], EfficientNet rescales by itself)
and ends in a 4-D feature map. `image_backbone_encoder` puts both adaptations
around the backbone, with plain Keras layers, in one serialisable model.
"""

import keras

from keras_contrastive._validation import fail

#: The `preprocessing` modes, as `keras.applications.imagenet_utils` names them
#: (None and "none": the backbone preprocesses its (0, 255) input itself).
PREPROCESSING_MODES = ("caffe", "torch", "tf", "none")

#: How the feature map is pooled to `(batch, features)`.
POOLING_MODES = ("avg", "max")

# ImageNet channel statistics, RGB order, as keras.applications uses them.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="keras_contrastive")
class ReverseChannels(keras.layers.Layer):
    """Reverses the order of the last axis: RGB images become BGR (and back).

    The "caffe" preprocessing of `keras.applications` (ResNet50/101/152, VGG16/19)
    feeds BGR images; Keras has no built-in layer for the flip. It has no weights
    and no arguments, and returns its input's shape and dtype.

    Example:

    >>> import keras
    >>> flipped = ReverseChannels()(keras.ops.array([[1.0, 2.0, 3.0]]))
    >>> keras.ops.convert_to_numpy(flipped).tolist()
    [[3.0, 2.0, 1.0]]
    """

    def call(self, inputs):
        return keras.ops.flip(inputs, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape


def preprocessing_layers(preprocessing):
    """The Keras layers that take (0, 255) RGB images to a backbone's input.

    Args:
        preprocessing: one of `PREPROCESSING_MODES` or None (see
            `image_backbone_encoder`).

    Returns:
        A list of layers (empty for None / "none"), to apply in order. Each
        matches `keras.applications.imagenet_utils.preprocess_input(x, mode=...)`
        on channels-last images, up to float32 rounding.
    """
    if preprocessing is None or preprocessing == "none":
        return []
    if not isinstance(preprocessing, str):
        fail(
            "preprocessing",
            f"one of {PREPROCESSING_MODES}, None or a Keras layer",
            preprocessing,
            TypeError,
        )
    if preprocessing == "caffe":
        # RGB -> BGR, then the ImageNet mean (BGR order) off, no scaling.
        return [
            ReverseChannels(name="rgb_to_bgr"),
            keras.layers.Normalization(
                mean=list(_CAFFE_MEAN_BGR), variance=[1.0] * 3, name="caffe_mean"
            ),
        ]
    if preprocessing == "torch":
        # x / 255, then (x - mean) / std: one affine map per channel.
        return [
            keras.layers.Normalization(
                mean=[255.0 * m for m in _TORCH_MEAN],
                variance=[(255.0 * s) ** 2 for s in _TORCH_STD],
                name="torch_normalization",
            )
        ]
    if preprocessing == "tf":
        return [keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="tf_rescaling")]
    fail(
        "preprocessing",
        f"one of {PREPROCESSING_MODES}, None or a Keras layer",
        preprocessing,
        detail="They are keras.applications.imagenet_utils' modes; a backbone's "
        "module says which it uses (keras.applications.resnet: 'caffe')",
    )


def _check_backbone(backbone):
    if not isinstance(backbone, keras.layers.Layer):
        fail(
            "backbone",
            "a Keras model or layer (a keras.applications model built with "
            "include_top=False, or a keras-hub backbone)",
            backbone,
            TypeError,
        )
    return backbone


def _input_shape(backbone, input_shape):
    """The encoder's per-image input shape: `input_shape`, else the backbone's."""
    if input_shape is None:
        try:
            shape = backbone.input_shape
        except (AttributeError, ValueError):
            shape = None
        if not isinstance(shape, tuple) or len(shape) != 4:
            fail(
                "input_shape",
                "given (height, width, channels) when the backbone has no single "
                "image input to read it from",
                input_shape,
                detail=f"backbone {backbone.name!r} has input_shape={shape!r}",
            )
        input_shape = shape[1:]
    if (
        not isinstance(input_shape, (tuple, list))
        or len(input_shape) != 3
        or not all(d is None or (isinstance(d, int) and d > 0) for d in input_shape)
    ):
        fail("input_shape", "a tuple (height, width, channels)", input_shape)
    return tuple(input_shape)


def image_backbone_encoder(
    backbone, preprocessing, pooling="avg", input_shape=None, name=None
):
    """An image backbone as a contrastive encoder: (0, 255) images -> features.

    Builds the Functional model

        images in (0, 255) -> preprocessing -> backbone -> pooling -> (batch, features)

    so that a `keras.applications` model (or a keras-hub backbone) can be the
    `encoder` of `SimCLR`, `MoCo`, `BYOL` and the other image methods, whose
    augmenters return views in `value_range` (0, 255). The backbone is nested as
    one layer, unchanged: freeze it with `backbone.trainable = False` (then
    `compile` again) to train the projection head alone, as one does before
    fine-tuning the whole network at a lower learning rate.

    `preprocessing` must be the one the backbone's weights were trained with;
    a wrong one still trains, but throws away most of what ImageNet weights
    know. The modes are those of `keras.applications.imagenet_utils`:

    - `"caffe"`: RGB -> BGR, minus the ImageNet mean (BGR order), no scaling.
      ResNet50/101/152, VGG16/19.
    - `"torch"`: x / 255, minus the ImageNet mean, over its standard deviation.
      DenseNet121/169/201.
    - `"tf"`: x / 127.5 - 1, into [-1, 1]. MobileNet, MobileNetV2, Xception,
      InceptionV3, InceptionResNetV2, ResNet50V2/101V2/152V2, NASNet.
    - None or `"none"`: nothing; the model rescales (0, 255) input itself.
      EfficientNet(V2), ConvNeXt, RegNet, MobileNetV3 (with
      `include_preprocessing=True`, its default).

    Each mode is made of plain Keras layers (`Rescaling`, `Normalization` with a
    fixed mean and variance; "caffe" adds `ReverseChannels`, this package's
    channel flip), so the encoder saves to `.keras` and loads back with
    `keras.saving.load_model` once `keras_contrastive` is imported. For any
    other preprocessing, pass a Keras layer taking (0, 255) images: for a
    keras-hub backbone, its preset's image converter
    (`keras_hub.layers.ImageConverter.from_preset(...)`), which scales images
    the way the preset expects (mind its `image_size`: it also resizes).

    Args:
        backbone: a Keras model or layer from channels-last images to a 4-D
            feature map `(batch, height, width, channels)` (e.g.
            `keras.applications.ResNet50(include_top=False)`) or to 2-D
            features (e.g. built with `pooling="avg"`; then `pooling` here is
            not used).
        preprocessing: one of `"caffe"`, `"torch"`, `"tf"`, None / `"none"` (the
            table above), or a Keras layer applied to the (0, 255) images.
            There is no default: it depends on the backbone.
        pooling: `"avg"` (default, global average pooling, as ResNet and
            SimCLR use) or `"max"`, applied when the backbone's output is 4-D.
        input_shape: the images' `(height, width, channels)`. Default: the
            backbone's own input shape (a Keras layer that is not a built
            model has none: then it is required). Dimensions may be None.
        name: the encoder's name. Default: `"<backbone name>_encoder"`.

    Returns:
        A Functional `keras.Model` from images `(batch, *input_shape)` in
        (0, 255), any dtype, to float features `(batch, features)`. The backbone
        is its layer `encoder.get_layer(backbone.name)`.

    Raises:
        TypeError: `backbone` is not a Keras layer, or `preprocessing` is not a
            string, None or a Keras layer.
        ValueError: an unknown `preprocessing` or `pooling`, an `input_shape`
            that is not (height, width, channels) or cannot be read from the
            backbone, or a backbone whose output is neither 2-D nor 4-D.

    Example:

    >>> import keras
    >>> from keras_contrastive.models import image_backbone_encoder
    >>> backbone = keras.applications.MobileNet(
    ...     input_shape=(32, 32, 3), alpha=0.25, include_top=False, weights=None
    ... )  # weights="imagenet" for the pretrained network
    >>> encoder = image_backbone_encoder(backbone, preprocessing="tf")
    >>> encoder.output_shape
    (None, 256)
    >>> [layer.name for layer in encoder.layers[1:]]
    ['tf_rescaling', 'mobilenet_0.25_32', 'avg_pool']

    Then `SimCLR(encoder)` trains it on raw uint8 images, augmented inside the
    step; `encoder.save("encoder.keras")` keeps it.
    """
    backbone = _check_backbone(backbone)
    if isinstance(preprocessing, keras.layers.Layer):
        preprocess = [preprocessing]
    else:
        preprocess = preprocessing_layers(preprocessing)
    if pooling not in POOLING_MODES:
        fail("pooling", f"one of {POOLING_MODES}", pooling)
    if name is not None and not isinstance(name, str):
        fail("name", "a string or None", name, TypeError)
    shape = _input_shape(backbone, input_shape)

    images = keras.Input(shape, name="images")
    x = images
    for layer in preprocess:
        x = layer(x)
    x = backbone(x)
    if not isinstance(x, keras.KerasTensor):
        fail(
            "backbone",
            "a network with one output tensor",
            type(x).__name__,
            received_as=f"type({backbone.name}(images))",
        )
    if len(x.shape) == 4:
        pool = {
            "avg": keras.layers.GlobalAveragePooling2D,
            "max": keras.layers.GlobalMaxPooling2D,
        }[pooling]
        x = pool(name=f"{pooling}_pool")(x)
    elif len(x.shape) != 2:
        fail(
            "backbone",
            "a network returning a 4-D feature map (batch, height, width, "
            "channels) or 2-D features (batch, features)",
            tuple(x.shape),
            received_as=f"{backbone.name}(images).shape",
        )
    return keras.Model(images, x, name=name or f"{backbone.name}_encoder")
