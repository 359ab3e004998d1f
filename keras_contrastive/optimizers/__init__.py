"""keras_contrastive.optimizers."""
