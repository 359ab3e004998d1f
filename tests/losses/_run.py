"""Value and gradient of a loss on the current backend, compiled once per shape on JAX.

Eager JAX compiles every primitive separately for each new shape (and a loss's forward
and backward pass hold ~100 primitives), which would spend the test budget compiling;
one `jax.jit` per (key, shapes) is several times cheaper. Arguments that are not
differentiated (labels, temperatures, margins) are traced too, so hypothesis examples
with new values reuse the compiled function.
"""

import keras
import numpy as np

from tests.backend_grad import value_and_grad as _eager_value_and_grad

_CACHE = {}


def _key(key, args):
    return (key,) + tuple(
        (np.shape(a), str(np.asarray(a).dtype)) if not np.isscalar(a) else "scalar"
        for a in args
    )


def value_and_grad(key, fn, args, argnums):
    """(value, [grads w.r.t. args[i] for i in argnums]) of scalar fn(*args)."""
    if keras.backend.backend() != "jax":
        fixed = dict(enumerate(args))

        def partial(*diff):
            full = dict(fixed)
            full.update(zip(argnums, diff))
            return fn(*[full[i] for i in range(len(args))])

        return _eager_value_and_grad(partial, *[args[i] for i in argnums])
    import jax

    cache_key = _key(key, args)
    compiled = _CACHE.get(cache_key)
    if compiled is None:
        compiled = jax.jit(jax.value_and_grad(fn, argnums=tuple(argnums)))
        _CACHE[cache_key] = compiled
    jax_args = [
        np.asarray(a, np.float32)
        if np.issubdtype(np.asarray(a).dtype, np.floating)
        else a
        for a in args
    ]
    value, grads = compiled(*jax_args)
    return float(value), [np.asarray(g) for g in grads]


def eager_value_and_grad(key, fn, args, argnums):
    fixed = dict(enumerate(args))

    def partial(*diff):
        full = dict(fixed)
        full.update(zip(argnums, diff))
        return fn(*[full[i] for i in range(len(args))])

    return _eager_value_and_grad(partial, *[args[i] for i in argnums])


_VALUE_CACHE = {}


def evaluate(key, fn, args):
    """fn(*args) as NumPy; on JAX compiled once per (key, shapes) like
    `value_and_grad` (eager JAX would compile each primitive for each shape)."""
    if keras.backend.backend() != "jax":
        return keras.ops.convert_to_numpy(fn(*args))
    import jax

    cache_key = _key(key, args)
    compiled = _VALUE_CACHE.get(cache_key)
    if compiled is None:
        compiled = jax.jit(fn)
        _VALUE_CACHE[cache_key] = compiled
    return np.asarray(compiled(*[np.asarray(a, np.float32) for a in args]))
