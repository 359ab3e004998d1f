"""Peak-memory readings of the current process (Linux `/proc`), shared by the
benchmarks that report what a call needs (gradient_cache.py, clip.py)."""

import ctypes


def status_kib(field):
    """A `/proc/self/status` field in KiB (`VmRSS`, `VmHWM`)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak():
    """Resets VmHWM to the current RSS; False where the kernel does not allow it.

    Memory freed after a warm-up call stays resident in malloc's arenas and would
    hide the next calls' needs: `malloc_trim` hands it back to the kernel first.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def allocator_reset():
    """Resets the backend allocator's own peak counter; its current bytes, or None.

    TensorFlow counts the bytes its CPU allocator hands out (live tensors,
    `tf.config.experimental.get_memory_info`), whatever malloc keeps resident
    afterwards; JAX and PyTorch keep no such count on the CPU.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    tf.config.experimental.reset_memory_stats("CPU:0")
    return tf.config.experimental.get_memory_info("CPU:0")["current"]


def allocator_peak_mib(base):
    """The allocator's peak since `allocator_reset` above its `base`, in MiB."""
    if base is None:
        return None
    import tensorflow as tf

    return (tf.config.experimental.get_memory_info("CPU:0")["peak"] - base) / 2**20
