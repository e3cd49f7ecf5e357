"""Public home of the Hypothesis strategies (defined in :mod:`gradcheck.ways_in.strategies`).

>>> from gradcheck.strategies import arrays
"""

from gradcheck.ways_in.strategies import *  # noqa: F403
from gradcheck.ways_in.strategies import __all__  # noqa: F401
