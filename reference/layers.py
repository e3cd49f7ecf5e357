r"""One section per layer and regularizer of ``gradcheck.models``: forward, backward, evidence.

:data:`LAYERS` is a table with one :class:`LayerRow` per layer class of the models (keyed
by the class name, a test walks ``gradcheck.models`` and fails on a missing row) plus
``L2`` for the penalty of ``Sequential(l2=λ)``. A row holds the forward and backward
equations as LaTeX with their shapes, the conventions that need stating, and the small
instance on which :func:`~gradcheck.reference.layer_evidence.layer_evidence` holds the
models' NumPy backward against the exact SymPy gradient and finite differences. The
symbolic forwards below are written from the definitions, never from the models' code.

Notation: ``G = ∂L/∂Y`` is the gradient arriving from above, shaped like the output; a
backward pass returns ``∂L/∂X`` and fills the parameter gradients.

>>> sorted(LAYERS)[:3]
['Activation', 'AvgPool2D', 'BatchNorm']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from gradcheck.reference.document import Block, Heading, Math, MathBlock, Paragraph, Table
from gradcheck.reference.exact import EXACT_ACTIVATIONS, EXACT_VECTOR_ACTIVATIONS, z
from gradcheck.reference.layer_evidence import LayerEvidence, Symbolic, layer_evidence

__all__ = ["LAYERS", "LayerRow", "layer_blocks"]


# ---- symbolic forwards, from the definitions -------------------------------------------

def _elementwise(f: sp.Expr) -> Callable[[np.ndarray], np.ndarray]:
    return np.vectorize(lambda v: f.subs(z, v), otypes=[object])


_tanh = np.vectorize(sp.tanh, otypes=[object])
_sigmoid = np.vectorize(lambda v: 1 / (1 + sp.exp(-v)), otypes=[object])
_sqrt = np.vectorize(sp.sqrt, otypes=[object])


def _dense(P: dict, x: np.ndarray, _: Any) -> np.ndarray:
    return x @ P["W"] + P["b"]


def _activation_tanh(P: dict, x: np.ndarray, _: Any) -> np.ndarray:
    return _elementwise(EXACT_ACTIVATIONS["tanh"].expr)(x)


def _activation_softmax(P: dict, x: np.ndarray, _: Any) -> np.ndarray:
    softmax = EXACT_VECTOR_ACTIVATIONS["softmax"].expr
    return np.array([softmax(list(row)) for row in x], dtype=object)


def _dropout(P: dict, x: np.ndarray, layer: Any) -> np.ndarray:
    # the frozen mask, read through the public forward: forward(1) = mask / (1 − p)
    scale = layer.forward(np.ones(x.shape))
    return x * np.vectorize(sp.Rational, otypes=[object])(scale)


def _normalize(x: np.ndarray, axis: int, eps: float) -> np.ndarray:
    mean = np.mean(x, axis=axis, keepdims=True)
    var = np.mean((x - mean) ** 2, axis=axis, keepdims=True)
    return (x - mean) / _sqrt(var + sp.Rational(eps))


def _batchnorm(P: dict, x: np.ndarray, layer: Any) -> np.ndarray:
    return P["gamma"] * _normalize(x, 0, layer.eps) + P["beta"]


def _layernorm(P: dict, x: np.ndarray, layer: Any) -> np.ndarray:
    return P["gamma"] * _normalize(x, -1, layer.eps) + P["beta"]


def _conv(P: dict, x: np.ndarray, layer: Any) -> np.ndarray:
    (s, _), (p, _) = layer.stride, layer.padding
    w = P["W"]
    out_c, _, k, _ = w.shape
    n, c, h, width = x.shape
    padded = np.full((n, c, h + 2 * p, width + 2 * p), sp.Integer(0), dtype=object)
    padded[:, :, p:p + h, p:p + width] = x
    oh, ow = (h + 2 * p - k) // s + 1, (width + 2 * p - k) // s + 1
    y = np.empty((n, out_c, oh, ow), dtype=object)
    for b, o, r, col in np.ndindex(*y.shape):
        window = padded[b, :, r * s:r * s + k, col * s:col * s + k]
        y[b, o, r, col] = P["b"][o] + sp.Add(*(w[o] * window).reshape(-1))
    return y


def _pool(reduce: Callable[[list], sp.Expr]) -> Symbolic:
    def forward(P: dict, x: np.ndarray, layer: Any) -> np.ndarray:
        (k, _), (s, _) = layer.pool_size, layer.stride
        n, c, h, w = x.shape
        y = np.empty((n, c, (h - k) // s + 1, (w - k) // s + 1), dtype=object)
        for b, ch, r, col in np.ndindex(*y.shape):
            y[b, ch, r, col] = reduce(list(x[b, ch, r * s:r * s + k, col * s:col * s + k]
                                           .reshape(-1)))
        return y
    return forward


def _flatten(P: dict, x: np.ndarray, _: Any) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


def _rnn(P: dict, x: np.ndarray, _: Any) -> np.ndarray:
    n, steps, _ = x.shape
    h = np.full((n, P["Wh"].shape[0]), sp.Integer(0), dtype=object)
    states = []
    for t in range(steps):
        h = _tanh(x[:, t] @ P["Wx"] + h @ P["Wh"] + P["b"])
        states.append(h)
    return np.stack(states, axis=1)


def _lstm(P: dict, x: np.ndarray, _: Any) -> np.ndarray:
    n, steps, _ = x.shape
    size = P["Wh"].shape[0]
    h = np.full((n, size), sp.Integer(0), dtype=object)
    c = h.copy()
    states = []
    for t in range(steps):
        a = x[:, t] @ P["Wx"] + h @ P["Wh"] + P["b"]
        i, f, o = (_sigmoid(a[:, k * size:(k + 1) * size]) for k in range(3))
        g = _tanh(a[:, 3 * size:])
        c = f * c + i * g
        h = o * _tanh(c)
        states.append(h)
    return np.stack(states, axis=1)


def _l2(P: dict, x: np.ndarray, layer: Any) -> tuple[np.ndarray, sp.Expr]:
    penalty = sp.Rational(layer.l2) * sp.Add(*(P["0.W"] ** 2).reshape(-1))
    return x @ P["0.W"] + P["0.b"], penalty


# ---- the table --------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerRow:
    """One section: ``intro`` and ``notes`` are prose with inline ``$…$`` LaTeX.

    ``forward`` and ``backward`` are ``(LaTeX, label)`` pairs (label: shapes or words);
    ``evidence`` builds the instance and returns its three-way errors.
    """

    name: str
    title: str
    intro: str
    forward: tuple[tuple[str, str], ...]
    backward: tuple[tuple[str, str], ...]
    evidence: Callable[[], LayerEvidence]
    notes: tuple[str, ...] = field(default=())


def _models() -> Any:
    import gradcheck.models as models
    return models


def _evidence(name: str, build: Callable[[], Any], symbolic: Symbolic,
              x_shape: tuple[int, ...], instance: str,
              prepare: Callable[[Any, np.ndarray], None] | None = None
              ) -> Callable[[], LayerEvidence]:
    return lambda: layer_evidence(name, build, symbolic, x_shape, instance=instance,
                                  prepare=prepare)


def _freeze(layer: Any, x: np.ndarray) -> None:
    layer.freeze_mask()
    layer.forward(x)


_ROWS = (
    LayerRow(
        "Dense", "Dense (fully connected)",
        "A batch of $N$ rows $X$ times a weight matrix, plus a bias broadcast over the rows. "
        "Each backward line is the chain rule through $Y = XW + \\mathbf{1}b$, with "
        "Jacobian $\\partial Y_{nj}/\\partial W_{ij} = X_{ni}$.",
        ((r"Y = X W + \mathbf{1} b",
          "X: (N, D_in), W: (D_in, D_out), b: (D_out,), Y: (N, D_out)"),),
        ((r"\frac{\partial L}{\partial W} = X^{T} G", "(D_in, N)·(N, D_out) = (D_in, D_out)"),
         (r"\frac{\partial L}{\partial b} = \sum_{n=1}^{N} G_{n}", "sum over the batch: (D_out,)"),
         (r"\frac{\partial L}{\partial X} = G W^{T}",
          "the input gradient, passed to the layer below: (N, D_out)·(D_out, D_in)")),
        _evidence("Dense", lambda: _models().Dense(3, 2), _dense, (2, 3),
                  "Dense(3, 2), batch of 2")),
    LayerRow(
        "Activation", "Activation layer",
        "An activation of the table applied entry by entry (its Jacobian is diagonal), or "
        "softmax along the last axis (a full Jacobian per row, multiplied without being "
        "formed).",
        ((r"Y = f(Z)", "elementwise; Z, Y: (N, …), same shape"),
         (r"Y_{n} = \operatorname{softmax}(Z_{n})", "softmax: each row n, Z, Y: (N, K)")),
        ((r"\frac{\partial L}{\partial Z} = G \odot f'(Z)",
          "elementwise: diagonal Jacobian, same shape"),
         (r"\frac{\partial L}{\partial Z_{n}} = Y_{n} \odot \left(G_{n} - "
          r"\left(G_{n} \cdot Y_{n}\right) \mathbf{1}\right)",
          "softmax: the vector-Jacobian product with s_i(δ_ij − s_j), row by row")),
        _evidence("Activation", lambda: _models().Activation("softmax"), _activation_softmax,
                  (2, 3), "Activation('softmax') on a (2, 3) batch (elementwise rows: "
                  "see the activations section)")),
    LayerRow(
        "Dropout", "Dropout (inverted)",
        "In training each entry is kept with probability $1 - p$ and scaled by "
        "$1/(1-p)$, so the expected output is the input; in evaluation mode the layer is "
        "the identity. With the mask $M$ fixed the layer is linear in $X$.",
        ((r"Y = X \odot \frac{M}{1 - p}", "M: 0/1 entries, X, Y, M: same shape"),),
        ((r"\frac{\partial L}{\partial X} = G \odot \frac{M}{1 - p}",
          "the same mask and scale; no parameters"),),
        _evidence("Dropout", lambda: _models().Dropout(0.5, seed=3), _dropout, (2, 4),
                  "Dropout(0.5) with its mask frozen, a (2, 4) batch", prepare=_freeze),
        notes=("A new mask at every forward makes repeated evaluations differ, which a "
               "checker reports as nondeterminism: call freeze_mask() first.",)),
    LayerRow(
        "BatchNorm", "Batch normalization",
        "Each feature is normalized with the batch mean $\\mu$ and the biased batch variance "
        "$\\sigma^2$ over its $m$ values ($m = N$ for $(N, D)$; $m = NHW$ per channel for "
        "$(N, C, H, W)$), then scaled by $\\gamma$ and shifted by $\\beta$. In training the "
        "backward goes through $\\mu$ and $\\sigma^2$, which depend on every sample.",
        ((r"\mu = \frac{1}{m} \sum_{n} x_{n}, \quad \sigma^{2} = \frac{1}{m} \sum_{n} "
          r"\left(x_{n} - \mu\right)^{2}", "per feature: (D,)"),
         (r"\hat{x}_{n} = \frac{x_{n} - \mu}{\sqrt{\sigma^{2} + \varepsilon}}, \quad "
          r"y_{n} = \gamma \odot \hat{x}_{n} + \beta", "x, x̂, y: (N, D); γ, β: (D,)")),
        ((r"\frac{\partial L}{\partial \gamma} = \sum_{n} g_{n} \odot \hat{x}_{n}, \quad "
          r"\frac{\partial L}{\partial \beta} = \sum_{n} g_{n}", "(D,) each"),
         (r"\frac{\partial L}{\partial \sigma^{2}} = -\frac{1}{2} \sum_{n} \left(g_{n} \odot "
          r"\gamma\right) \odot \left(x_{n} - \mu\right) \left(\sigma^{2} + "
          r"\varepsilon\right)^{-3/2}", "through the variance: (D,)"),
         (r"\frac{\partial L}{\partial \mu} = -\sum_{n} \frac{g_{n} \odot \gamma}"
          r"{\sqrt{\sigma^{2} + \varepsilon}}",
          "through the mean: (D,) (the term through σ² vanishes, as Σ(x − μ) = 0)"),
         (r"\frac{\partial L}{\partial x_{n}} = \frac{g_{n} \odot \gamma}{\sqrt{\sigma^{2} + "
          r"\varepsilon}} + \frac{2 \left(x_{n} - \mu\right)}{m} \odot \frac{\partial L}"
          r"{\partial \sigma^{2}} + \frac{1}{m} \frac{\partial L}{\partial \mu}",
          "the three paths from x to L: (N, D)"),
         (r"\frac{\partial L}{\partial x} = \frac{1}{\sqrt{\sigma^{2} + \varepsilon}} \odot "
          r"\left(\hat{g} - \operatorname{mean}(\hat{g}) - \hat{x} \odot "
          r"\operatorname{mean}(\hat{g} \odot \hat{x})\right), \quad \hat{g} = g \odot \gamma",
          "the same, simplified (what gradcheck.models computes; means over the m values)")),
        _evidence("BatchNorm", lambda: _models().BatchNorm(2), _batchnorm, (3, 2),
                  "BatchNorm(2) in training mode, a (3, 2) batch"),
        notes=("In evaluation mode the running statistics replace $\\mu$ and $\\sigma^2$: "
               "the layer is affine and $\\partial L/\\partial x = g \\odot \\gamma / "
               "\\sqrt{\\sigma^2_{\\mathrm{run}} + \\varepsilon}$. The running statistics "
               "move during a check in training mode; the gradients do not depend on them.",)),
    LayerRow(
        "LayerNorm", "Layer normalization",
        "The same normalization as batch norm, but over the last axis of each sample "
        "($m = D$ values per row), so the samples do not interact; $\\gamma$ and "
        "$\\beta$ are shared by all rows.",
        ((r"\mu_{n} = \frac{1}{D} \sum_{d} x_{nd}, \quad \hat{x}_{n} = \frac{x_{n} - \mu_{n}}"
          r"{\sqrt{\sigma_{n}^{2} + \varepsilon}}, \quad y_{n} = \gamma \odot \hat{x}_{n} + "
          r"\beta", "x, y: (N, …, D); γ, β: (D,)"),),
        ((r"\frac{\partial L}{\partial \gamma} = \sum_{n} g_{n} \odot \hat{x}_{n}, \quad "
          r"\frac{\partial L}{\partial \beta} = \sum_{n} g_{n}",
          "sums over every leading axis: (D,)"),
         (r"\frac{\partial L}{\partial x_{n}} = \frac{1}{\sqrt{\sigma_{n}^{2} + \varepsilon}} "
          r"\left(\hat{g}_{n} - \operatorname{mean}(\hat{g}_{n}) - \hat{x}_{n} "
          r"\operatorname{mean}(\hat{g}_{n} \odot \hat{x}_{n})\right), \quad \hat{g} = g "
          r"\odot \gamma", "means over the D entries of row n")),
        _evidence("LayerNorm", lambda: _models().LayerNorm(3), _layernorm, (2, 3),
                  "LayerNorm(3), a (2, 3) batch")),
    LayerRow(
        "Conv2D", "Convolution (2-d cross-correlation)",
        "Each output entry is a window of the zero-padded input $\\tilde{X}$ (padding $p$) "
        "dotted with one filter, the window moving by the stride $s$. The output size "
        "follows from counting the window positions.",
        ((r"H_{\mathrm{out}} = \left\lfloor \frac{H + 2p - k}{s} \right\rfloor + 1",
          "the output-size formula (the same for the width)"),
         (r"Y_{n,o,r,c} = b_{o} + \sum_{c',i,j} W_{o,c',i,j} \, \tilde{X}_{n,c',rs+i,cs+j}",
          "X: (N, C_in, H, W), W: (C_out, C_in, k, k), b: (C_out,), Y: (N, C_out, H_out, W_out)")),
        ((r"\frac{\partial L}{\partial b_{o}} = \sum_{n,r,c} G_{n,o,r,c}", "(C_out,)"),
         (r"\frac{\partial L}{\partial W_{o,c',i,j}} = \sum_{n,r,c} G_{n,o,r,c} \, "
          r"\tilde{X}_{n,c',rs+i,cs+j}",
          "the input correlated with G: (C_out, C_in, k, k)"),
         (r"\frac{\partial L}{\partial \tilde{X}_{n,c',u,v}} = \sum_{o} \sum_{(r,i):\, rs+i=u} "
          r"\sum_{(c,j):\, cs+j=v} G_{n,o,r,c} \, W_{o,c',i,j}",
          "every window that saw the entry sends its share back"),
         (r"\frac{\partial L}{\partial X} = \operatorname{crop}_{p}\left(\operatorname{dilate}"
          r"_{s}(G) \star_{\mathrm{full}} \operatorname{rot}_{180}(W)\right)",
          "a transposed convolution: G with s − 1 zeros between entries, fully padded by "
          "k − 1, correlated with the flipped kernel, input and output channels swapped, "
          "then the padding p cut off: (N, C_in, H, W)")),
        _evidence("Conv2D", lambda: _models().Conv2D(1, 2, 3, stride=2, padding=1),
                  _conv, (2, 1, 4, 4), "Conv2D(1, 2, kernel 3, stride 2, padding 1) on a "
                  "(2, 1, 4, 4) batch: a 2 × 2 output"),
        notes=("Stride and padding bugs show in $\\partial L/\\partial X$ at the borders: "
               "that is why the input gradient is checked too.",)),
    LayerRow(
        "MaxPool2D", "Max pooling",
        "The largest entry of each window (no padding; stride defaults to the window "
        "size). Away from ties the max is locally the selected entry, so its gradient is "
        "1 there and 0 elsewhere.",
        ((r"Y_{n,c,r,q} = \max_{0 \le i,j < k} X_{n,c,rs+i,qs+j}",
          "X: (N, C, H, W), Y: (N, C, ⌊(H − k)/s⌋ + 1, …)"),),
        ((r"\frac{\partial L}{\partial X_{n,c,u,v}} = \sum_{(r,q):\, (u,v) = "
          r"\operatorname{argmax}_{r,q}} G_{n,c,r,q}",
          "each window's gradient goes to its maximum; overlapping windows add up"),),
        _evidence("MaxPool2D", lambda: _models().MaxPool2D(2), _pool(lambda w: sp.Max(*w)),
                  (2, 1, 4, 4), "MaxPool2D(2) on a (2, 1, 4, 4) batch with no ties"),
        notes=("Convention at a tie: the max is not differentiable there; gradcheck.models "
               "sends the whole gradient to the first maximum in row-major order, one valid "
               "subgradient (the derivative from the side where that entry is the unique "
               "maximum).",)),
    LayerRow(
        "AvgPool2D", "Average pooling",
        "The mean of each window: a fixed linear map.",
        ((r"Y_{n,c,r,q} = \frac{1}{k^{2}} \sum_{0 \le i,j < k} X_{n,c,rs+i,qs+j}",
          "shapes as for max pooling"),),
        ((r"\frac{\partial L}{\partial X_{n,c,u,v}} = \frac{1}{k^{2}} \sum_{(r,q):\, (u,v) "
          r"\in \mathrm{window}(r,q)} G_{n,c,r,q}", "each window shares its gradient equally"),),
        _evidence("AvgPool2D", lambda: _models().AvgPool2D(2, stride=1),
                  _pool(lambda w: sp.Add(*w) / len(w)), (1, 1, 3, 3),
                  "AvgPool2D(2, stride 1) on a (1, 1, 3, 3) input: overlapping windows")),
    LayerRow(
        "Flatten", "Flatten",
        "A reshape between convolutional and dense layers: no arithmetic, so the backward "
        "is the reverse reshape.",
        ((r"Y = \operatorname{reshape}(X, (N, d_{1} d_{2} \cdots))", "X: (N, d1, d2, …)"),),
        ((r"\frac{\partial L}{\partial X} = \operatorname{reshape}(G, \operatorname{shape}(X))",
          "no parameters"),),
        _evidence("Flatten", lambda: _models().Flatten(), _flatten, (2, 2, 3),
                  "Flatten on a (2, 2, 3) batch")),
    LayerRow(
        "RNN", "Recurrent layer (Elman RNN)",
        "One tanh cell applied at every step of a sequence, from $h_0 = 0$, with the same "
        "weights at every step; the layer returns every hidden state. Backpropagation "
        "through time runs the chain rule backwards over the steps.",
        ((r"h_{t} = \tanh\left(x_{t} W_{x} + h_{t-1} W_{h} + b\right)",
          "x: (N, T, D), Wx: (D, H), Wh: (H, H), b: (H,), h: (N, T, H)"),),
        ((r"\delta_{t} = \left(g_{t} + \delta_{t+1} W_{h}^{T}\right) \odot \left(1 - "
          r"h_{t}^{2}\right), \quad \delta_{T+1} = 0",
          "the error at step t's pre-activation: from its own output and from step t + 1"),
         (r"\frac{\partial L}{\partial W_{x}} = \sum_{t} x_{t}^{T} \delta_{t}, \quad "
          r"\frac{\partial L}{\partial W_{h}} = \sum_{t} h_{t-1}^{T} \delta_{t}, \quad "
          r"\frac{\partial L}{\partial b} = \sum_{t} \sum_{n} \delta_{t,n}",
          "the shared weights collect every step's contribution"),
         (r"\frac{\partial L}{\partial x_{t}} = \delta_{t} W_{x}^{T}",
          "each input its own step's: (N, D) per step")),
        _evidence("RNN", lambda: _models().RNN(2, 2), _rnn, (2, 3, 2),
                  "RNN(2, 2) over 3 steps, a batch of 2")),
    LayerRow(
        "LSTM", "Long short-term memory (LSTM)",
        "Four gates from one affine map (order $i, f, o, g$ along the $4H$ axis), a cell "
        "state $c_t$ that is carried additively and a hidden state $h_t$, from "
        "$h_0 = c_0 = 0$.",
        ((r"\left[a^{i}, a^{f}, a^{o}, a^{g}\right] = x_{t} W_{x} + h_{t-1} W_{h} + b",
          "Wx: (D, 4H), Wh: (H, 4H), b: (4H,)"),
         (r"i = \sigma(a^{i}), \; f = \sigma(a^{f}), \; o = \sigma(a^{o}), \; g = "
          r"\tanh(a^{g})", "gates: (N, H) each"),
         (r"c_{t} = f \odot c_{t-1} + i \odot g, \quad h_{t} = o \odot \tanh(c_{t})",
          "cell and hidden state: (N, H)")),
        ((r"\bar{h}_{t} = g_{t} + \delta^{a}_{t+1} W_{h}^{T}, \quad \bar{c}_{t} = \bar{c}_{t+1}"
          r" \odot f_{t+1} + \bar{h}_{t} \odot o_{t} \odot \left(1 - \tanh^{2} c_{t}\right)",
          "gradients reaching h_t and c_t (zero beyond the last step)"),
         (r"\delta^{i} = \bar{c}_{t} \odot g_{t} \odot i_{t}(1 - i_{t}), \quad \delta^{f} = "
          r"\bar{c}_{t} \odot c_{t-1} \odot f_{t}(1 - f_{t})", "input and forget gates"),
         (r"\delta^{o} = \bar{h}_{t} \odot \tanh(c_{t}) \odot o_{t}(1 - o_{t}), \quad "
          r"\delta^{g} = \bar{c}_{t} \odot i_{t} \odot \left(1 - g_{t}^{2}\right)",
          "output gate and candidate"),
         (r"\frac{\partial L}{\partial W_{x}} = \sum_{t} x_{t}^{T} \delta^{a}_{t}, \quad "
          r"\frac{\partial L}{\partial W_{h}} = \sum_{t} h_{t-1}^{T} \delta^{a}_{t}, \quad "
          r"\frac{\partial L}{\partial x_{t}} = \delta^{a}_{t} W_{x}^{T}",
          "δᵃ = [δⁱ, δᶠ, δᵒ, δᵍ]: (N, 4H) per step; ∂L/∂b = Σₜ Σₙ δᵃ")),
        _evidence("LSTM", lambda: _models().LSTM(2, 2), _lstm, (2, 2, 2),
                  "LSTM(2, 2) over 2 steps, a batch of 2")),
    LayerRow(
        "L2", "L2 regularization (weight decay)",
        "Sequential(layers, l2=λ) adds $\\lambda \\sum \\theta^2$ "
        "over the weights (the parameters a layer lists as decayed: $W$, $W_x$, $W_h$; "
        "not biases, not $\\gamma$, $\\beta$) to the objective, and its gradient to the "
        "weights' gradients.",
        ((r"L_{\mathrm{total}} = L + \lambda \sum_{\theta \in \mathrm{weights}} \theta^{2}",
          "λ ≥ 0; the penalty is not divided by N"),),
        ((r"\frac{\partial L_{\mathrm{total}}}{\partial \theta} = \frac{\partial L}{\partial "
          r"\theta} + 2 \lambda \theta", "same shape as θ; ∂L/∂X is unchanged"),),
        _evidence("L2", lambda: _models().Sequential([_models().Dense(3, 2)], l2=0.375),
                  _l2, (2, 3), "Sequential([Dense(3, 2)], l2 = 0.375), batch of 2"),
        notes=("Conventions differ, so state them when comparing: here $\\lambda\\sum\\theta^2$ "
               "with gradient $2\\lambda\\theta$ (as in cs231n's assignments). Nielsen's book "
               "writes $\\frac{\\lambda}{2n}\\sum w^2$ with gradient $\\frac{\\lambda}{n} w$: "
               "the same as $\\lambda_{\\mathrm{here}} = \\lambda_{\\mathrm{book}}/(2n)$. "
               "PyTorch's weight_decay adds $\\mathrm{wd}\\,\\theta$ to the "
               "gradient: $\\lambda_{\\mathrm{here}} = \\mathrm{wd}/2$.",)),
)

LAYERS: dict[str, LayerRow] = {row.name: row for row in _ROWS}
"""Every layer of ``gradcheck.models`` by class name, and ``"L2"``."""


def _line(latex: str) -> Math:
    return Math.tex(latex)


def layer_blocks(row: LayerRow) -> tuple[list[Block], LayerEvidence]:
    """The section of ``row``: heading, intro, forward, backward, notes, evidence table."""
    ev = row.evidence()
    out: list[Block] = [
        Heading(3, row.title, anchor=f"layer-{row.name}"),
        Paragraph.parse(row.intro),
        MathBlock(tuple(_line(f) for f, _ in row.forward),
                  tuple(f"forward; {label}" for _, label in row.forward)),
        MathBlock(tuple(_line(b) for b, _ in row.backward),
                  tuple(f"backward; {label}" for _, label in row.backward)),
        *(Paragraph.parse(note) for note in row.notes),
        Paragraph.of(f"Numeric evidence on {ev.instance}, at a point with dyadic-rational "
                     "entries and a fixed upstream gradient G: the exact gradient (this "
                     "layer's forward written from the definition in SymPy, differentiated "
                     "symbolically, evaluated at 50 digits) against the NumPy backward of "
                     "gradcheck.models and central finite differences of its forward; errors "
                     "are max|difference| / max|exact| per tensor."),
        Table(("tensor", "shape", "NumPy vs exact", "finite differences vs exact"),
              tuple((t.tensor, str(t.shape), f"{t.numpy_error:.1e}", f"{t.fd_error:.1e}")
                    for t in ev.tensors)),
    ]
    return out, ev
