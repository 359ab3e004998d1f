"""Exact against approximate (HNSW) nearest-neighbour search of `SemanticIndex`.

    KERAS_BACKEND=jax python benchmarks/search.py   (or: python3 tasks.py bench search)
    options: --num 100000 --dim 128 --queries 1000 --k 10 --ef-search 16,32,64,128

Needs the `ann` extra (`pip install "keras_contrastive[ann]"`, i.e. faiss-cpu).

Data: `num` clustered, random-ish vectors (2,000 Gaussian cluster centres, each
point its centre plus noise of the same scale, so neighbourhoods are real but not
trivial) and `queries` further points drawn the same way (not in the index).

Prints:
  * build time: `add` of the exact index (copy + normalisation) and of the HNSW
    index (graph construction, hnsw_m=32, ef_construction=128);
  * batch search of all queries (k=10): seconds and queries per second, exact
    (blocked matmul + top-k on the Keras backend) and HNSW for each `ef_search`;
  * single-query latency (median of 50 one-row searches), exact and HNSW;
  * recall@10 of HNSW: the fraction of the exact top 10 that HNSW returns;
  * speed-up ratios exact / HNSW measured in the same process.
Each search is run once before timing (JAX compiles per shape).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_contrastive.evaluation import SemanticIndex  # noqa: E402


def clustered(rng, num, dim, centres):
    return (
        centres[rng.integers(0, len(centres), num)]
        + rng.normal(size=(num, dim)) / np.sqrt(dim)
    ).astype("float32")


def timed(function, repeat=1):
    function()  # warm-up (compilation, caches)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, float(np.median(times))


def recall(found, truth):
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth)]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--ef-search", default="16,32,64,128")
    args = parser.parse_args()
    ef_values = [int(v) for v in args.ef_search.split(",")]

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2000, args.dim)) / np.sqrt(args.dim)
    corpus = clustered(rng, args.num, args.dim, centres)
    queries = clustered(rng, args.queries, args.dim, centres)
    print(
        f"backend={keras.backend.backend()} corpus={args.num}x{args.dim} "
        f"queries={args.queries} k={args.k} cores={os.cpu_count()}"
    )

    start = time.perf_counter()
    exact = SemanticIndex().add(corpus)
    exact_build = time.perf_counter() - start
    start = time.perf_counter()
    approximate = SemanticIndex(backend="hnsw").add(corpus)
    hnsw_build = time.perf_counter() - start
    print(f"build: exact {exact_build:.2f} s, hnsw {hnsw_build:.2f} s")

    (truth, _), exact_batch = timed(lambda: exact.search(queries, args.k))
    one = queries[:1]
    _, exact_single = timed(lambda: exact.search(one, args.k), repeat=50)
    print(
        f"exact: batch {exact_batch:.3f} s ({args.queries / exact_batch:,.0f} "
        f"queries/s), single query {exact_single * 1e3:.2f} ms"
    )
    for ef in ef_values:
        approximate.ef_search = ef
        (found, _), batch = timed(lambda: approximate.search(queries, args.k))
        _, single = timed(lambda: approximate.search(one, args.k), repeat=50)
        print(
            f"hnsw ef_search={ef:>4}: recall@{args.k} {recall(found, truth):.4f}, "
            f"batch {batch:.3f} s ({args.queries / batch:,.0f} queries/s, "
            f"{exact_batch / batch:.1f}x exact), single query {single * 1e3:.3f} ms "
            f"({exact_single / single:.1f}x exact)"
        )


if __name__ == "__main__":
    main()
