"""keras_contrastive.evaluation."""
