"""An online network whose predictor regresses a target (BYOL, SimSiam)."""

from keras import ops

from keras_contrastive.losses import byol_loss
from keras_contrastive.models.image_model import (
    ImageContrastiveModel,
    check_batch_norm_views,
    global_view_pairs,
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

    With more than two views (a `MultiCrop` augmenter) only the global views have
    targets, and every view's prediction regresses the target of every other
    global view (Caron et al. 2020's pairing, as solo-learn's multi-crop BYOL):
    the loss is the mean over those (prediction, target) pairs, which is the
    symmetrised loss above for two views.

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
        def online(view):
            z = self.project(view, training)
            return z, self.prediction_head(z, training=training)

        def target(view_and_z):
            return ops.stop_gradient(self.targets(*view_and_z, training))

        views = self.augment(x)
        z, p = zip(*map_views(online, views, self.batch_norm_views))
        global_views = range(self.num_global_views)
        targets = map_views(
            target, [(views[i], z[i]) for i in global_views], self.batch_norm_views
        )
        return {"predictions": tuple(p), "targets": tuple(targets), "z_a": z[0]}

    def compute_contrastive_loss(self, outputs):
        p, targets = outputs["predictions"], outputs["targets"]
        losses = []
        for i, j in global_view_pairs(len(p), len(targets)):
            losses.append(ops.mean(byol_loss(p[j], targets[i])))
            if j < len(targets):  # both global: view i predicts view j's target
                losses.append(ops.mean(byol_loss(p[i], targets[j])))
        return ops.mean(ops.stack(losses))

    def compute_contrastive_stats(self, outputs):
        # The collapse monitor reads the online projection (SimSiam, fig. 2).
        p, targets = outputs["predictions"], outputs["targets"]
        return view_pair_stats(p[0], targets[1], outputs["z_a"])
