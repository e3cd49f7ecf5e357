"""Source text of small layer files that CLI and plugin tests write to disk and load."""

import textwrap

#: ``Affine``: y = x @ W + b, ``bug`` multiplies dL/dW (1.0 = correct); tests append
#: their own subclasses to this text.
AFFINE_SOURCE = textwrap.dedent('''
    import numpy as np

    class Affine:
        """y = x @ W + b; ``bug`` multiplies dL/dW (1.0 = correct)."""

        def __init__(self, d_in=3, d_out=2, bug=1.0):
            rng = np.random.default_rng(0)
            self.params = {"W": rng.standard_normal((d_in, d_out)), "b": np.zeros(d_out)}
            self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
            self.bug = bug

        def forward(self, x):
            self.x = np.array(x)
            return self.x @ self.params["W"] + self.params["b"]

        def backward(self, grad_out):
            self.grads["W"][...] = self.bug * self.x.T @ grad_out
            self.grads["b"][...] = grad_out.sum(axis=0)
            return grad_out @ self.params["W"].T
''')
