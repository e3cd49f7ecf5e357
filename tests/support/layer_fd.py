"""Gradient assertions for the models' tests.

``assert_layer_gradients`` is the one place the models' tests ask "are this layer's
gradients right?". It runs the real checker in full mode, so every entry of the input
gradient and of every parameter gradient is compared with finite differences.
"""

from __future__ import annotations

import numpy as np

import gradcheck


def assert_layer_gradients(layer, x: np.ndarray, *, seed: int = 0) -> None:
    """Assert the input and parameter gradients of ``layer`` at ``x`` (every entry).

    Raises ``gradcheck.GradientMismatch`` (an ``AssertionError``) whose message is the
    checker's table of worst entries and its diagnosis.
    """
    gradcheck.assert_layer(layer, x, mode="full", seed=seed)
