"""keras_contrastive.datasets."""
