"""An online network whose predictor regresses a target (BYOL, SimSiam)."""

from keras import ops

from keras_contrastive.losses import byol_loss
from keras_contrastive.models.image_model import (
    ImageContrastiveModel,
    check_batch_norm_views,
    map_views,
)
from keras_contrastive.models.monitoring import view_pair_stats


class PredictorModel(ImageContrastiveModel):
    """Learning without negatives: predict one view's target from the other view.

    Both views go through the online network (`encoder`, `projection_head`,
    `prediction_head`) and the target network, in one call on the concatenated
    views (`batch_norm_views="joint"`: batch norm sees 2N images) or, by default,
    one call per view (`"per_view"`, as the BYOL code and lightly). Each view's
    prediction p regresses the stop-gradient target t of the other view with BYOL's
    loss 2 - 2 cos(p, t) (Grill et al. 2020, eq. 2), symmetrised:
    loss = (mean_i l(p_a,i, t_b,i) + mean_i l(p_b,i, t_a,i)) / 2, in [0, 4] (the
    paper sums the two terms; the mean keeps `BYOLLoss`'s scale). Subclasses say
    what the target is (`targets`): BYOL a momentum network's projection, SimSiam
    the online projection itself (Chen & He 2021).

    Logs `contrastive_accuracy` (is the other view's target the closest of the
    batch's targets to the prediction) and `embedding_std` of the online
    projection, which falls towards 0 if the representation collapses.
    """

    uses_prediction_head = True
    nested_config = (*ImageContrastiveModel.nested_config, "prediction_head")
    config_attributes = ("batch_norm_views",)

    def __init__(self, *args, batch_norm_views="per_view", **kwargs):
        super().__init__(*args, **kwargs)
        self.batch_norm_views = check_batch_norm_views(batch_norm_views)

    def targets(self, views, z, training):
        """The regression targets of a batch of `views` (whose online projections
        are `z`); gradients are stopped by the caller."""
        raise NotImplementedError

    def forward_pass(self, x, training=False):
        def online_and_target(view):
            z = self.project(view, training)
            p = self.prediction_head(z, training=training)
            return z, p, ops.stop_gradient(self.targets(view, z, training))

        (z_a, p_a, target_a), (_, p_b, target_b) = map_views(
            online_and_target, self.augment(x), self.batch_norm_views
        )
        return {
            "p_a": p_a,
            "p_b": p_b,
            "target_a": target_a,
            "target_b": target_b,
            "z_a": z_a,
        }

    def compute_contrastive_loss(self, outputs):
        loss_ab = byol_loss(outputs["p_a"], outputs["target_b"])
        loss_ba = byol_loss(outputs["p_b"], outputs["target_a"])
        return 0.5 * (ops.mean(loss_ab) + ops.mean(loss_ba))

    def compute_contrastive_stats(self, outputs):
        # The collapse monitor reads the online projection (SimSiam, fig. 2).
        return view_pair_stats(outputs["p_a"], outputs["target_b"], outputs["z_a"])
