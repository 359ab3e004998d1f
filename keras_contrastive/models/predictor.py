"""An online network whose predictor regresses a target (BYOL, SimSiam)."""

from keras import ops

from keras_contrastive.losses import byol_loss
from keras_contrastive.models.image_model import ImageContrastiveModel
from keras_contrastive.models.monitoring import view_pair_stats


class PredictorModel(ImageContrastiveModel):
    """Learning without negatives: predict one view's target from the other view.

    Both views go through the online network (`encoder`, `projection_head`,
    `prediction_head`) in one call, so batch norm sees 2N images. Each view's
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

    def targets(self, views, z, training):
        """The regression targets of the concatenated `views` (online projections
        `z`); gradients are stopped by the caller."""
        raise NotImplementedError

    def forward_pass(self, x, training=False):
        view_a, view_b = self.augment(x)
        views = ops.concatenate([view_a, view_b], axis=0)
        z = self.project(views, training)
        p = self.prediction_head(z, training=training)
        target = ops.stop_gradient(self.targets(views, z, training))
        n = ops.shape(view_a)[0]
        return {
            "p_a": p[:n],
            "p_b": p[n:],
            "target_a": target[:n],
            "target_b": target[n:],
            "z_a": z[:n],
        }

    def compute_contrastive_loss(self, outputs):
        loss_ab = byol_loss(outputs["p_a"], outputs["target_b"])
        loss_ba = byol_loss(outputs["p_b"], outputs["target_a"])
        return 0.5 * (ops.mean(loss_ab) + ops.mean(loss_ba))

    def compute_contrastive_stats(self, outputs):
        # The collapse monitor reads the online projection (SimSiam, fig. 2).
        return view_pair_stats(outputs["p_a"], outputs["target_b"], outputs["z_a"])
