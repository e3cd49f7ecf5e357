"""A function's own autograd backward, changed on purpose (the tests' planted bugs).

Import only after ``pytest.importorskip("torch")``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def rewired(fn: Callable[..., Any], *, cotangent: Callable[[Any], Any] = lambda g: g,
            first: Callable[[Any], Any] = lambda g: g) -> Callable[..., Any]:
    """``fn`` as an ``autograd.Function`` whose backward is autograd's own, with the
    cotangent passed through ``cotangent`` before and the first input's gradient (a
    contiguous copy, never an unused ``None``) through ``first`` after."""

    class Rewired(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, *ts: Any) -> Any:
            with torch.enable_grad():
                leaves = [t.detach().requires_grad_() for t in ts]
                y = fn(*leaves)
            ctx.leaves, ctx.y = leaves, y
            return y.detach()

        @staticmethod
        def backward(ctx: Any, gy: Any) -> Any:
            gs = torch.autograd.grad(ctx.y, ctx.leaves, cotangent(gy), allow_unused=True,
                                     retain_graph=True)
            gs = [torch.zeros_like(t) if g is None else g
                  for g, t in zip(gs, ctx.leaves, strict=True)]
            return (first(gs[0].clone(memory_format=torch.contiguous_format)), *gs[1:])

    return Rewired.apply
