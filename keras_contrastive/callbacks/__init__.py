"""keras_contrastive.callbacks."""
