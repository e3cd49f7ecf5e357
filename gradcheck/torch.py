"""``gradcheck.torch``: check PyTorch code with gradcheck's engine (needs ``torch``).

A drop-in for ``torch.autograd.gradcheck``/``gradgradcheck`` (change one import line)
and checks that name the tensor and entry at fault:

>>> from gradcheck.torch import gradcheck      # was: from torch.autograd import gradcheck
>>> import torch
>>> x = torch.randn(5, dtype=torch.float32, requires_grad=True)
>>> gradcheck(torch.sigmoid, (x,))             # float32, no tolerance to tune
True

This module imports nothing heavy itself: torch is imported on first use of a name
below (``import gradcheck`` never imports torch). See
:mod:`gradcheck.adapters.torch_adapter` for how tensors, devices and dtypes are handled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gradcheck.ways_in.lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from gradcheck.adapters.torch_adapter import (
        GradcheckError,
        check,
        check_module,
        gradcheck,
        gradgradcheck,
    )

__all__ = ["GradcheckError", "check", "check_module", "gradcheck", "gradgradcheck"]

__getattr__, __dir__ = lazy_exports(
    __name__, dict.fromkeys(__all__, "gradcheck.adapters.torch_adapter"))
