"""keras_contrastive.evaluation: read-outs of a frozen representation.

- `knn_classify` / `knn_accuracy`: weighted cosine kNN of Wu et al. (2018).
- `compute_embeddings` / `knn_evaluate`: the same, starting from an encoder.
- `linear_probe`: a softmax classifier on frozen, standardised features.
"""

from keras_contrastive.evaluation.embeddings import compute_embeddings, knn_evaluate
from keras_contrastive.evaluation.knn import knn_accuracy, knn_classify
from keras_contrastive.evaluation.linear_probe import linear_probe

__all__ = [
    "compute_embeddings",
    "knn_accuracy",
    "knn_classify",
    "knn_evaluate",
    "linear_probe",
]
