"""What the checker hands to the diagnosis: per-tensor analytic and numeric values.

The checker core (``checks``/``numeric``/``fast``) builds one :class:`TensorEvidence`
per checked tensor and one :class:`RunEvidence` per check; ``diagnosis.diagnose`` turns
them into one-line findings. Keeping this contract in its own module lets both sides
evolve independently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


class Finding(str):
    """One line of diagnosis: the sentence itself, carrying a stable ``code``.

    A ``Finding`` *is* its sentence (a ``str``), so code that prints or searches findings
    keeps working; tools and tests read ``finding.code`` (``"sign-flip"``,
    ``"repeated-rows"``, ...), which never changes with the wording.

    >>> f = Finding("W: sign flipped (analytic = -1.00 × numeric)", code="sign-flip")
    >>> f.code, f.startswith("W: ")
    ('sign-flip', True)
    """

    code: str

    def __new__(cls, text: str, code: str = "") -> Finding:
        self = super().__new__(cls, text)
        self.code = code
        return self

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (Finding, (str(self), self.code))


@dataclass(frozen=True)
class TensorEvidence:
    """Analytic and numeric derivatives of one tensor (an input or a parameter).

    Attributes
    ----------
    name : str
        ``"x"`` for a layer's input, a parameter name (``"W"``), or a dotted model
        parameter name (``"0.W"``, the prefix before the first dot is the layer).
    role : str
        ``"input"`` or ``"param"``.
    analytic : ndarray
        The gradient the user's code claims, in the tensor's shape.
    numeric : ndarray
        Finite-difference values in the same shape; ``NaN`` where not computed (fast mode
        only computes the entries it localized).
    wrong : ndarray of bool
        Entries judged mismatched (False where not computed or not differentiable).
    nondifferentiable : ndarray of bool
        Entries at a kink (left and right one-sided derivatives disagree).
    layout : str
        Optional axis names such as ``"NCHW"`` (conv input), ``"NTD"`` (sequence input),
        ``""`` when unknown; the diagnosis falls back to shape heuristics.
    value : ndarray or None
        The tensor's own values at the checked point (a parameter's weights, the input),
        same shape; None when not known. An error proportional to ``value`` is a
        weight-decay term with the wrong factor.
    """

    name: str
    role: str
    analytic: np.ndarray
    numeric: np.ndarray
    wrong: np.ndarray
    nondifferentiable: np.ndarray
    layout: str = ""
    value: np.ndarray | None = None


@dataclass(frozen=True)
class RunEvidence:
    """Facts about the whole check that are not per tensor.

    Attributes
    ----------
    batch_size : int or None
        Leading dimension of the input, when there is a batch.
    history_dependent : bool
        ``backward`` gave a different answer for the same input after a forward on another
        input: a stale cache.
    nondeterministic : bool
        The same input gave different outputs on repeated forward calls.
    accumulating : bool
        Identical forward/backward calls kept adding the same amount to the parameter
        gradients (``dx`` unchanged): ``backward`` adds to ``grads`` instead of
        overwriting them.
    tensors : tuple of TensorEvidence
    precision : str
        The precision the outputs carry (``"float64"``, ``"float32"``; ``""`` unknown): a
        float32-sized relative error in float64 code is a value rounded to float32.
    aliased : tuple of str
        Parameters whose ``grads`` array *is* (or shares memory with) the ``params``
        array: backward then overwrites the weights, which looks like nondeterminism.
    indices : tuple of ndarray
        Integer arrays the code indexes with (a layer's integer attributes, such as
        embedding ids ``(N, T)``): rows of a parameter indexed more than once.
    layer_names : dict of str to str
        ``check_model``: the class of each layer by its index (``{"0": "Dense"}``).
    outputs : tuple of str
        Names of the differentiated output leaves, each with its own upstream gradient
        (``("y",)`` for a layer; ``("out[0]", "out[1]")`` for a step returning ``(h, c)``).
    contributions : callable or None
        ``contributions(name, entries) -> tuple of ndarray or None``, asked only by a
        detector: for flat ``entries`` of tensor ``name``, one array per output leaf of
        shape ``(len(entries),) + out.shape``, each output entry's share ``G ⊙ ∂out/∂θₑ``
        in the numeric gradient (central differences, two calls per entry). None when
        the adapter cannot move that tensor.
    """

    batch_size: int | None = None
    history_dependent: bool = False
    nondeterministic: bool = False
    accumulating: bool = False
    tensors: tuple[TensorEvidence, ...] = field(default_factory=tuple)
    precision: str = ""
    aliased: tuple[str, ...] = ()
    indices: tuple[np.ndarray, ...] = ()
    layer_names: dict[str, str] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    contributions: Callable[[str, np.ndarray], tuple[np.ndarray, ...] | None] | None = field(
        default=None, compare=False, repr=False)
