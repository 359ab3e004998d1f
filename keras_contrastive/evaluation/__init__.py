"""keras_contrastive.evaluation: read-outs of a frozen representation.

- `knn_classify` / `knn_accuracy`: weighted cosine kNN of Wu et al. (2018).
- `compute_embeddings` / `knn_evaluate`: the same, starting from an encoder.
- `linear_probe`: a softmax classifier on frozen, standardised features.
- `SemanticIndex`: the library's nearest-neighbour search (exact, or HNSW through
  the optional `ann` extra), over embeddings or texts.
- `sts_spearman` / `spearman_correlation`: STS Benchmark evaluation of a text
  encoder (Cer et al., 2017).
- `paraphrase_mining`: the most similar pairs within one set, block by block.
- `metric_retrieval`: precision@1, R-precision and MAP@R of labelled embeddings,
  the supervised metric-learning read-out of Musgrave et al. (2020).
- `retrieval_metrics`: image-to-text and text-to-image recall@k (CLIP-style).
- `encode_texts`: the text encoder protocol those functions share.
- `effective_rank`: the effective rank (RankMe) of embeddings, a label-free
  dimensional-collapse diagnostic (Roy & Vetterli 2007; Garrido et al. 2023).
- `zero_shot_classifier` / `zero_shot_accuracy` / `class_embeddings`: zero-shot
  classification of an image-text model (CLIP) from prompt templates.
"""

from keras_contrastive.evaluation.embeddings import compute_embeddings, knn_evaluate
from keras_contrastive.evaluation.knn import knn_accuracy, knn_classify
from keras_contrastive.evaluation.linear_probe import linear_probe
from keras_contrastive.evaluation.metric_retrieval import metric_retrieval
from keras_contrastive.evaluation.paraphrase import paraphrase_mining
from keras_contrastive.evaluation.rank import effective_rank
from keras_contrastive.evaluation.retrieval import retrieval_metrics
from keras_contrastive.evaluation.semantic_index import SemanticIndex
from keras_contrastive.evaluation.sts import spearman_correlation, sts_spearman
from keras_contrastive.evaluation.texts import encode_texts
from keras_contrastive.evaluation.zero_shot import (
    ZeroShotClassifier,
    class_embeddings,
    zero_shot_accuracy,
    zero_shot_classifier,
)

__all__ = [
    "SemanticIndex",
    "ZeroShotClassifier",
    "class_embeddings",
    "compute_embeddings",
    "effective_rank",
    "encode_texts",
    "knn_accuracy",
    "knn_classify",
    "knn_evaluate",
    "linear_probe",
    "metric_retrieval",
    "paraphrase_mining",
    "retrieval_metrics",
    "spearman_correlation",
    "sts_spearman",
    "zero_shot_accuracy",
    "zero_shot_classifier",
]
