"""gradcheck: prove backpropagation code right.

Three sources of truth held against each other: exact derivatives (SymPy, in
``gradcheck.reference``), analytic hand-written backprop (NumPy, in
``gradcheck.models``), and numeric finite differences (this package's checker core).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
