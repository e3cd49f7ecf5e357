"""``gradcheck.jax``: check JAX code with gradcheck's engine (needs ``jax``).

A drop-in for ``jax.test_util.check_grads`` (change one import line) and a check that
names the leaf and entry at fault:

>>> from gradcheck.jax import check_grads     # was: from jax.test_util import check_grads
>>> import jax.numpy as jnp
>>> check_grads(jnp.sin, (jnp.arange(4.0),), order=1, modes=("rev",))

This module imports nothing heavy itself: JAX is imported on first use of a name below
(``import gradcheck`` never imports JAX). See :mod:`gradcheck.adapters.jax_adapter` for
pytrees, immutable arrays and the ``jax_enable_x64`` rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gradcheck.ways_in.lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from gradcheck.adapters.jax_adapter import check, check_grads

__all__ = ["check", "check_grads"]

__getattr__, __dir__ = lazy_exports(
    __name__, dict.fromkeys(__all__, "gradcheck.adapters.jax_adapter"))
