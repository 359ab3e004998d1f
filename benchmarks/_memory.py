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
