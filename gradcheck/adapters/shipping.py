"""The serializer that ships a check's function to ``executor=`` workers.

cloudpickle (``pip install 'gradcheck[parallel]'``) pickles lambdas, closures and classes
defined in a test file or ``__main__``; without it the standard library's pickle is used,
which ships only functions and classes importable by name (the engine then names the
function that cannot be pickled and says what to install).

>>> import pickle
>>> dumps_for_workers()((1, 2)) == pickle.dumps((1, 2)) or callable(dumps_for_workers())
True
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any


def dumps_for_workers() -> Callable[[Any], bytes]:
    """``cloudpickle.dumps`` when cloudpickle is installed, else ``pickle.dumps``."""
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps
    dumps: Callable[[Any], bytes] = cloudpickle.dumps
    return dumps


__all__ = ["dumps_for_workers"]
