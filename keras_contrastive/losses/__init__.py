"""keras_contrastive.losses."""
