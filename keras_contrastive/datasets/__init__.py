"""keras_contrastive.datasets: data as NumPy arrays or streamed, and samplers of pairs.

- `load_cifar10`: CIFAR-10 from a local JPEG-npz file or Keras' download.
- `load_cifar10_sample`: 5,000 CIFAR-10 images bundled with the package (offline).
- `load_image_folder`: a user's class-per-folder images, into memory.
- `image_folder_dataset`: a folder of images (class sub-folders or unlabeled)
  streamed as a `tf.data.Dataset`, decoded batch by batch.
- `load_jpeg_npz` / `write_jpeg_npz`: the compact JPEG-npz format itself.
- `load_stsb`: STS Benchmark sentence pairs and scores from its TSV files.
- `load_ucr_uea` / `read_ts`: UCR/UEA time-series classification sets (`.ts`
  files; small ones bundled with sktime or aeon, read without importing them).
- `temporal_pairs` / `TemporalPairs`: time-contrastive pairs (positives within
  `max_offset` steps, negatives far away or from other sequences).
"""

from keras_contrastive.datasets.cifar10 import (
    CIFAR10_CLASSES,
    SAMPLE_PATH,
    load_cifar10,
    load_cifar10_sample,
    stratified_split,
)
from keras_contrastive.datasets.image_folder import (
    image_folder_dataset,
    load_image_folder,
)
from keras_contrastive.datasets.jpeg_npz import load_jpeg_npz, write_jpeg_npz
from keras_contrastive.datasets.stsb import load_stsb
from keras_contrastive.datasets.temporal import TemporalPairs, temporal_pairs
from keras_contrastive.datasets.ucr_uea import load_ucr_uea, read_ts

__all__ = [
    "CIFAR10_CLASSES",
    "SAMPLE_PATH",
    "TemporalPairs",
    "image_folder_dataset",
    "load_cifar10",
    "load_cifar10_sample",
    "load_image_folder",
    "load_jpeg_npz",
    "load_stsb",
    "load_ucr_uea",
    "read_ts",
    "stratified_split",
    "temporal_pairs",
    "write_jpeg_npz",
]
