"""YAML with line marks: a campaign, deck or profile file read with the place (line, column) of each key
and value.

`read_yaml` returns the data and its `Marks`; `Marks.problem` turns a `KeyPath`
into a `Problem` that points at the file, line and column. A syntax error or a key
given twice is already a problem here, before any schema sees the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from tandem.file_problems import FileProblemsError, KeyPath, Problem


@dataclass
class Marks:
    """Where each key and value of a YAML document is (1-based line and column)."""

    source: str
    keys: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    values: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)

    def resolve(self, loc: Sequence[Any]) -> KeyPath:
        """The longest prefix of `loc` in the document (pydantic's union tags are skipped)."""
        path: KeyPath = ()
        for element in loc:
            step = element if isinstance(element, int) else str(element)
            if (*path, step) in self.values:
                path = (*path, step)
        return path

    def place(self, path: KeyPath, *, key: bool = False) -> tuple[int, int] | None:
        while True:
            table = self.keys if key else self.values
            if path in table:
                return table[path]
            if not path:
                return None
            path, key = path[:-1], True

    def problem(self, path: KeyPath, message: str, hint: str = "", *, key: bool = False) -> Problem:
        place = self.place(path, key=key)
        return Problem(
            self.source,
            _dotted(path),
            message,
            hint,
            line=place[0] if place else None,
            column=place[1] if place else None,
        )


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def read_yaml(text: str, source: str) -> tuple[Any, Marks]:
    marks = Marks(source)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise FileProblemsError(
            [Problem(source, "", f"not valid YAML: {exc.problem or exc}", "fix the syntax", line, col)]
        ) from None
    except yaml.YAMLError as exc:
        raise FileProblemsError([Problem(source, "", f"not valid YAML: {exc}", "fix the syntax")]) from None
    finally:
        loader.dispose()
    duplicates: list[Problem] = []
    if node is not None:
        marks.values[()] = (node.start_mark.line + 1, node.start_mark.column + 1)
        _walk(node, (), marks, duplicates)
    if duplicates:
        raise FileProblemsError(duplicates)
    return data, marks


def _walk(node: yaml.Node, path: KeyPath, marks: Marks, duplicates: list[Problem]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            if key in seen:
                line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                duplicates.append(
                    Problem(
                        marks.source, _dotted(child), "this key appears twice", "keep one of them", line, col
                    )
                )
            seen.add(key)
            marks.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            marks.values[child] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)
            _walk(value_node, child, marks, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            marks.values[(*path, i)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            marks.keys[(*path, i)] = marks.values[(*path, i)]
            _walk(item, (*path, i), marks, duplicates)


__all__ = ["Marks", "read_yaml"]
