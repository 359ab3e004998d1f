"""NNCLR (Dwibedi et al. 2021): nearest neighbours from a support set as positives."""

import keras
from keras import ops

from keras_contrastive import distribute
from keras_contrastive._validation import check_positive_int, check_positive_number
from keras_contrastive.layers.state import FeatureQueue
from keras_contrastive.losses import info_nce
from keras_contrastive.models.image_model import ImageContrastiveModel
from keras_contrastive.models.monitoring import view_pair_stats


@keras.saving.register_keras_serializable(package="keras_contrastive")
class NNCLR(ImageContrastiveModel):
    """NNCLR: contrastive learning with nearest-neighbour positives.

    Each batch of raw images is augmented twice; both views go through the
    `encoder`, `projection_head` (projections z) and `prediction_head`
    (predictions p). Instead of the other view itself, the positive of view a is
    the nearest neighbour NN(z_a) of its projection in a *support set* Q of past
    projections (cosine similarity, one matrix product and an argmax), so
    positives come from other images of the same semantic neighbourhood
    (Dwibedi et al. 2021, eq. 2):

        l_i = -log [ exp(NN(z_i) . p_i+ / tau) / sum_k exp(NN(z_i) . p_k+ / tau) ]

    with p_i+ the prediction of the other view of image i and the sum over every
    prediction of the (global) batch; the loss averages both directions (a -> b,
    b -> a). The support set is a FIFO queue (`FeatureQueue`, as MoCo's) that is
    never back-propagated through; after each optimizer step the projections of
    view a (of every replica) replace its oldest entries. At the start the queue
    holds random unit vectors, as in the paper's code.

    Args:
        encoder: a Keras model or layer from images to 2-D features (batch, dim).
        projection_head: default `ProjectionHead(hidden_dims=(dim,),
            output_dim=128)` (the paper: three layers, output 256).
        prediction_head: default `PredictionHead(hidden_dims=(dim,),
            output_dim=<projection size>)` (the paper: 4096 hidden units); its
            output size must equal the projection's.
        augmenter: default: a `SimCLRAugmenter` sized to the input images.
        support_size: the support set's size (the paper: 98,304).
        temperature: tau (the paper: 0.1).

    Logs `loss`, `contrastive_accuracy` (is the other view's prediction the
    closest of the batch's to the neighbour) and `embedding_std`.

    Example:

    ```python
    import numpy as np
    import keras
    from keras_contrastive.models import NNCLR

    images = np.random.randint(0, 256, (64, 32, 32, 3), dtype="uint8")
    encoder = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    model = NNCLR(encoder, support_size=256)
    model.compile(optimizer="adam")
    model.fit(images, batch_size=32, epochs=1, verbose=0)
    ```
    """

    uses_prediction_head = True
    nested_config = (*ImageContrastiveModel.nested_config, "prediction_head")
    config_attributes = ("support_size", "temperature")

    def __init__(
        self,
        encoder,
        projection_head=None,
        prediction_head=None,
        augmenter=None,
        support_size=16384,
        temperature=0.1,
        **kwargs,
    ):
        super().__init__(
            encoder,
            projection_head,
            augmenter,
            prediction_head=prediction_head,
            **kwargs,
        )
        self.support_size = check_positive_int("support_size", support_size)
        self.temperature = check_positive_number("temperature", temperature)
        self.support_set = None

    def build(self, input_shape):
        super().build(input_shape)
        self.support_set = FeatureQueue(
            self.support_size, self.projection_dim, name="support_set"
        )

    def forward_pass(self, x, training=False):
        view_a, view_b = self.augment(x)
        z = self.project(ops.concatenate([view_a, view_b], axis=0), training)
        p = self.prediction_head(z, training=training)
        neighbours = ops.stop_gradient(self.support_set.nearest(z))
        n = ops.shape(view_a)[0]
        return {
            "z_a": z[:n],
            "p_a": p[:n],
            "p_b": p[n:],
            "neighbour_a": neighbours[:n],
            "neighbour_b": neighbours[n:],
        }

    def compute_contrastive_loss(self, outputs):
        t = self.temperature
        loss_ab = info_nce(outputs["neighbour_a"], outputs["p_b"], temperature=t)
        loss_ba = info_nce(outputs["neighbour_b"], outputs["p_a"], temperature=t)
        return 0.5 * (ops.mean(loss_ab) + ops.mean(loss_ba))

    def compute_contrastive_stats(self, outputs):
        return view_pair_stats(outputs["neighbour_a"], outputs["p_b"], outputs["z_a"])

    def post_step(self, outputs):
        # Every replica enqueues every replica's projections: the sets stay equal.
        self.support_set.enqueue(distribute.gather(outputs["z_a"]))
