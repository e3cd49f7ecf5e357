"""Nested structures ("trees") of arrays: flatten to named leaves, rebuild, match.

A **tree** is an array, or a ``dict`` / ``list`` / ``tuple`` (named tuples too) whose
items are trees; anything else is a leaf as well (a constant such as a ``conv_param``
dict is a leaf only when it is not a container: see :func:`flatten`). A leaf is named by
its **path** from a root name:

* a dict key ``k`` adds ``.k`` (``params.W1``; with an empty root just ``W1``);
* a list or tuple position ``i`` adds ``[i]`` (``weights[1]``, ``params.layers[1].W``).

>>> import numpy as np
>>> tree = {"W": np.ones(2), "layers": [np.zeros(1), np.zeros(3)]}
>>> [leaf.name for leaf in flatten(tree, "params")]
['params.W', 'params.layers[0]', 'params.layers[1]']
>>> rebuilt = rebuild(tree, [1, 2, 3])
>>> rebuilt["layers"][1]
3
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gradcheck.engine.safety import CheckInputError

Path = tuple[Any, ...]


@dataclass(frozen=True)
class Leaf:
    """One leaf of a tree: its name, its path (keys and positions) and its value."""

    name: str
    path: Path
    value: Any


def is_container(value: Any) -> bool:
    """Dicts, lists and tuples are containers; arrays, numbers and objects are leaves."""
    return isinstance(value, (Mapping, list, tuple))


def child_name(root: str, key: Any) -> str:
    """``root.key`` for a dict key, ``root[i]`` for a position (``key`` an int)."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{root}[{key}]"
    return f"{root}.{key}" if root else str(key)


def _items(tree: Any) -> Iterable[tuple[Any, Any]]:
    if isinstance(tree, Mapping):
        return tree.items()
    return enumerate(tree)


def flatten(tree: Any, root: str = "", *, path: Path = ()) -> list[Leaf]:
    """Leaves of ``tree`` in order (dict insertion order, then positions), named by path.

    An empty container has no leaves.
    """
    if not is_container(tree):
        return [Leaf(root, path, tree)]
    out: list[Leaf] = []
    for key, item in _items(tree):
        out += flatten(item, child_name(root, key), path=(*path, key))
    return out


def rebuild(tree: Any, values: Iterable[Any]) -> Any:
    """A tree shaped like ``tree`` whose leaves, in :func:`flatten` order, are ``values``.

    Containers are rebuilt (dicts as ``dict`` keeping key order, lists as lists, tuples
    and named tuples as their own type); ``tree`` itself is not modified.
    """
    it = iter(values)
    out = _rebuild(tree, it)
    if next(it, _END) is not _END:
        raise CheckInputError("more values than leaves when rebuilding a tree")
    return out


_END = object()


def _rebuild(tree: Any, it: Any) -> Any:
    if not is_container(tree):
        value = next(it, _END)
        if value is _END:
            raise CheckInputError("fewer values than leaves when rebuilding a tree")
        return value
    if isinstance(tree, Mapping):
        return {key: _rebuild(item, it) for key, item in tree.items()}
    items = [_rebuild(item, it) for item in tree]
    if isinstance(tree, list):
        return items
    if hasattr(tree, "_fields"):  # a named tuple
        return type(tree)(*items)
    return type(tree)(items) if type(tree) is not tuple else tuple(items)


def match(structure: Any, other: Any, owner: str, root: str = "") -> list[Any]:
    """The leaves of ``other`` at the leaf paths of ``structure`` (same nesting required).

    ``None`` anywhere in ``other`` stands for a whole subtree with no gradient: every
    leaf below it comes back as ``None``. Raises :class:`CheckInputError` naming the
    first path where the two differ (a missing key, a different length, a leaf where a
    container was expected).
    """
    out: list[Any] = []
    _match(structure, other, owner, root, out)
    return out


def _match(structure: Any, other: Any, owner: str, name: str, out: list[Any]) -> None:
    if other is None:
        out += [None] * len(flatten(structure))
        return
    if not is_container(structure):
        out.append(other)
        return
    where = name or "the top level"
    if isinstance(structure, Mapping):
        if not isinstance(other, Mapping):
            raise CheckInputError(f"{owner}: at {where} expected a dict with keys "
                                  f"{list(structure)}, got {type(other).__name__}")
        missing = [k for k in structure if k not in other and flatten(structure[k])]
        if missing:
            raise CheckInputError(f"{owner}: at {where} the keys {missing} are missing "
                                  f"(expected the keys {list(structure)}; use None for no "
                                  f"gradient)")
        for key, item in structure.items():
            _match(item, other.get(key), owner, child_name(name, key), out)
        return
    if not isinstance(other, (list, tuple)) or len(other) != len(structure):
        got = (f"a {type(other).__name__} of length {len(other)}"
               if isinstance(other, (list, tuple)) else type(other).__name__)
        raise CheckInputError(f"{owner}: at {where} expected a {type(structure).__name__} of "
                              f"length {len(structure)}, got {got}")
    for i, (item, theirs) in enumerate(zip(structure, other, strict=True)):
        _match(item, theirs, owner, child_name(name, i), out)


__all__ = ["Leaf", "child_name", "flatten", "is_container", "match", "rebuild"]
