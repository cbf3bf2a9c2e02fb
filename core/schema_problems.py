"""The schema's verdicts in words: each pydantic error, and each number too large to store, as a `Problem`.

A pydantic error names a location inside the models (of a campaign, deck or profile
file); here it becomes a problem at the key's line in the file, with a hint (the allowed
keys, the closest spelling, what to add). Whole numbers are checked before the schema
because a campaign is stored as JSON with 64-bit integers, which pydantic's `int` does
not know.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Union

from pydantic import BaseModel

from tandem.file_problems import KeyPath, Problem
from tandem.yaml_marks import Marks

#: the whole numbers a campaign record can hold (Tiled stores it as JSON with 64-bit integers)
_INT64 = (-(2**63), 2**63 - 1)


def huge_integers(data: Any, path: KeyPath, marks: Marks) -> list[Problem]:
    """A problem for each whole number in `data` too large to store (settings and inline decks too)."""
    if isinstance(data, bool):
        return []
    if isinstance(data, int):
        if _INT64[0] <= data <= _INT64[1]:
            return []
        return [marks.problem(path, f"{data} is too large a number to store", "use a smaller value")]
    children: Any = ()
    if isinstance(data, dict):
        children = data.items()
    elif isinstance(data, list):
        children = enumerate(data)
    return [
        problem
        for key, value in children
        for problem in huge_integers(value, (*path, key if isinstance(key, int) else str(key)), marks)
    ]


def schema_problem(
    err: Mapping[str, Any], marks: Marks, root: type[BaseModel], prefix: KeyPath = ()
) -> Problem:
    loc: KeyPath = (*prefix, *err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        path = marks.resolve(loc)
        allowed = _allowed_keys(root, tuple(err["loc"][:-1]))
        unknown = str(loc[-1])
        close = difflib.get_close_matches(unknown, allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        hint += f"allowed here: {', '.join(allowed)}" if allowed else "remove it"
        return marks.problem(path, f"unknown key {unknown!r}", hint, key=True)
    if kind == "missing":
        parent = marks.resolve(loc[:-1])
        return marks.problem(
            (*parent, str(loc[-1])), f"required key {loc[-1]!r} is missing", f"add {loc[-1]!r} here", key=True
        )
    path = marks.resolve(loc)
    # a validator's own words, without pydantic's label for them
    message = err["msg"].removeprefix("Value error, ")
    if path != loc and path == marks.resolve(loc[:-1]) == loc[:-1]:
        # a key the file leaves out whose default another key makes wrong: name it at its parent
        return marks.problem((*path, str(loc[-1])), message, f"add {loc[-1]!r} here", key=True)
    got = err.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
    return marks.problem(path, f"{message}{shown}", "change the value")


def _allowed_keys(root: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The keys a mapping at `loc` may hold, by walking the models' annotations."""
    current: Any = root
    for element in loc:
        current = _unwrap(current, element)
        if current is None:
            return []
    current = _unwrap(current, None)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any, element: Any) -> Any:
    """One step down `annotation` along `element` (a field, a key or an index); None if lost."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(models[0], element) if len(models) == 1 else None
    if element is None:
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        info = annotation.model_fields.get(str(element))
        return None if info is None else info.annotation
    if origin is list and isinstance(element, int):
        return typing.get_args(annotation)[0]
    if origin is dict:
        return typing.get_args(annotation)[1]
    return None


__all__ = ["huge_integers", "schema_problem"]
