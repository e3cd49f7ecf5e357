"""Conv2D layers with one deliberate bug each, built on the correct backward.

Only public names are used (``params``, ``grads``, ``padding``, ``stride`` and
:func:`gradcheck.models.conv.fold_windows`), so the layer's internals may change freely.
"""

from __future__ import annotations

import numpy as np

from gradcheck.models.conv import Conv2D, fold_windows


class ReplicatePaddingConv2D(Conv2D):
    """Zero-padded forward, but the backward treats the padding as copies of the edge."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._input_shape = np.shape(x)
        return super().forward(x)

    def padded_input_grad(self, grad_out: np.ndarray) -> np.ndarray:
        """dL/d(padded input): ``(N, C, H + 2·ph, W + 2·pw)``, padding ring included."""
        n, c, h, w = self._input_shape
        ph, pw = self.padding
        dwin = np.tensordot(grad_out, self.params["W"], axes=([1], [0]))  # (N, OH, OW, C, kh, kw)
        return fold_windows(dwin.transpose(0, 3, 1, 2, 4, 5), (n, c, h + 2 * ph, w + 2 * pw),
                            self.stride)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        dx = np.array(super().backward(grad_out))
        pad = self.padded_input_grad(np.asarray(grad_out, dtype=dx.dtype))
        (ph, pw), (h, w) = self.padding, dx.shape[2:]
        # BUG: the gradient that lands on the zero padding is added to the nearest edge
        # pixels (right for "replicate" padding) instead of being dropped.
        dx[:, :, 0, :] += pad[:, :, :ph, pw:pw + w].sum(axis=2)
        dx[:, :, -1, :] += pad[:, :, ph + h:, pw:pw + w].sum(axis=2)
        dx[:, :, :, 0] += pad[:, :, ph:ph + h, :pw].sum(axis=3)
        dx[:, :, :, -1] += pad[:, :, ph:ph + h, pw + w:].sum(axis=3)
        return dx


class ConvolvedWeightGradConv2D(Conv2D):
    """``dW`` of a true convolution (kernel flipped) for a layer that cross-correlates."""

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        dx = super().backward(grad_out)
        self.grads["W"][...] = self.grads["W"][..., ::-1, ::-1].copy()  # BUG: kernel flipped
        return dx


class MeanBiasConv2D(Conv2D):
    """``db`` divided by the batch size (an extra 1/N)."""

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        dx = super().backward(grad_out)
        self.grads["b"][...] /= np.shape(grad_out)[0]  # BUG: extra 1/N
        return dx
