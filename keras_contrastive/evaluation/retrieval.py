"""`retrieval_metrics`: image-to-text and text-to-image recall@k, the zero-shot
retrieval read-out of image-text models (Radford et al., 2021, "Learning
Transferable Visual Models From Natural Language Supervision" (CLIP); the
Flickr30k and MS-COCO protocol of Karpathy and Fei-Fei, 2015, "Deep
Visual-Semantic Alignments for Generating Image Descriptions", with several
captions per image)."""

import numpy as np

from keras_contrastive._validation import (
    check_int_tuple,
    check_one_of,
    check_positive_int,
    fail,
    shown_as,
)
from keras_contrastive.evaluation.arrays import (
    check_embeddings,
    check_same_dim,
    to_numpy,
)
from keras_contrastive.evaluation.semantic_index import SemanticIndex


def _check_text_to_image(text_to_image, num_texts, num_images):
    if text_to_image is None:
        if num_texts != num_images:
            fail(
                "text_to_image",
                "given when there are not as many texts as images (it maps each "
                "text to the index of its image)",
                None,
                detail=f"There are {num_images} images and {num_texts} texts",
            )
        return np.arange(num_texts)
    mapping = to_numpy(text_to_image)
    if mapping.ndim != 1 or mapping.shape[0] != num_texts:
        fail(
            "text_to_image.shape",
            f"({num_texts},): one image index per row of `text_embeddings`",
            mapping.shape,
        )
    if mapping.dtype.kind not in "iu":
        fail("text_to_image.dtype", "an integer dtype", str(mapping.dtype), TypeError)
    mapping = mapping.astype(np.int64)
    if mapping.min() < 0 or mapping.max() >= num_images:
        fail(
            "text_to_image",
            f"image indices in [0, {num_images})",
            shown_as(f"indices in [{mapping.min()}, {mapping.max()}]"),
        )
    uncovered = np.setdiff1d(np.arange(num_images), mapping)
    if len(uncovered):
        fail(
            "text_to_image",
            "a mapping that gives every image at least one text",
            shown_as(f"a mapping without a text for image {uncovered[0]}"),
        )
    return mapping


def _first_hit(hits):
    """Column of the first True in each row (the number of columns when none)."""
    return np.where(hits.any(axis=1), np.argmax(hits, axis=1), hits.shape[1])


def retrieval_metrics(
    image_embeddings,
    text_embeddings,
    k=(1, 5, 10),
    text_to_image=None,
    metric="cosine",
    query_batch_size=256,
):
    """Image-to-text and text-to-image recall@k of paired embeddings.

    Text-to-image: each text queries all images; recall@k is the fraction of
    texts whose own image is among the `k` best. Image-to-text: each image
    queries all texts; recall@k is the fraction of images with at least one of
    their own texts among the `k` best (the protocol of Karpathy and Fei-Fei,
    2015, reported for CLIP by Radford et al., 2021, on Flickr30k and MS-COCO
    with five captions per image). Both searches go through `SemanticIndex`
    (exact).

    Args:
        image_embeddings: `(num_images, dim)` array or tensor.
        text_embeddings: `(num_texts, dim)` array or tensor.
        k: an int or a tuple of ints, each in `[1, min(num_images, num_texts)]`.
        text_to_image: integer array of shape `(num_texts,)`, the index of
            each text's image; every image needs at least one text. `None`
            pairs text i with image i (then the counts must be equal).
        metric: `"cosine"` (default, as CLIP) or `"dot"`.
        query_batch_size: queries per batch of the search.

    Returns:
        A dict of Python floats in [0, 1]: `"image_to_text_recall@{k}"` for
        each k, then `"text_to_image_recall@{k}"` for each k.

    Example:

    >>> import numpy as np
    >>> images = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> texts = np.array([[1.0, 0.1], [0.2, 1.0], [0.6, 0.8]])
    >>> retrieval_metrics(images, texts, k=(1, 2), text_to_image=[0, 0, 1])
    ... # doctest: +NORMALIZE_WHITESPACE
    {'image_to_text_recall@1': 0.5, 'image_to_text_recall@2': 1.0,
     'text_to_image_recall@1': 0.6666666666666666, 'text_to_image_recall@2': 1.0}
    """
    images = check_embeddings("image_embeddings", image_embeddings, allow_empty=False)
    texts = check_embeddings("text_embeddings", text_embeddings, allow_empty=False)
    check_same_dim("text_embeddings", texts, "image_embeddings", images)
    mapping = _check_text_to_image(text_to_image, len(texts), len(images))
    limit = min(len(images), len(texts))
    ks = check_int_tuple("k", k, minimum=1)
    if max(ks) > limit:
        fail(
            "k",
            f"ints in [1, {limit}] (at most the number of images and of texts)",
            k,
        )
    metric = check_one_of("metric", metric, ("cosine", "dot"))
    query_batch_size = check_positive_int("query_batch_size", query_batch_size)
    deepest = max(ks)

    def search(corpus, queries):
        index = SemanticIndex(metric=metric, query_batch_size=query_batch_size)
        return index.add(corpus).search(queries, deepest)[0]

    # Rank (0-based) of the first correct result of each query, or `deepest`.
    image_to_text = _first_hit(
        mapping[search(texts, images)] == np.arange(len(images))[:, None]
    )
    text_to_image = _first_hit(search(images, texts) == mapping[:, None])
    results = {}
    for name, first in (
        ("image_to_text", image_to_text),
        ("text_to_image", text_to_image),
    ):
        for value in ks:
            results[f"{name}_recall@{value}"] = float(np.mean(first < value))
    return results
