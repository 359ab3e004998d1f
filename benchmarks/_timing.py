"""Wall-clock timing of a no-argument callable, shared by the benchmarks."""

import time


def timings(run, warmup, repeats):
    """Seconds of each of `repeats` calls of `run`, after `warmup` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times
