"""keras_contrastive.layers."""
