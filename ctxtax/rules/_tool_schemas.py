"""Reading tool schemas: their text, their shape without prose, how deep they nest and which
enums run long, and whether one tool nearly repeats another of a different server."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ctxtax._model import ToolSpec
from ctxtax.rules._tool_usage import server_of

_PROSE_KEYS = frozenset({"description", "title", "examples", "$comment"})
_WORD = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")


def schema_text(spec: ToolSpec) -> str:
    return spec.description + "\n" + json.dumps(spec.parameters, sort_keys=True, default=str)


def _strip_prose(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_prose(v) for k, v in node.items() if k not in _PROSE_KEYS}
    if isinstance(node, list):
        return [_strip_prose(v) for v in node]
    return node


def skeleton(spec: ToolSpec) -> str:
    """The parameter schema without its prose: tools taking the same arguments share it."""
    return json.dumps(_strip_prose(spec.parameters), sort_keys=True, default=str)


def _words(text: str) -> set[str]:
    return set(_WORD.findall(_CAMEL.sub(r"\1 \2", text).lower()))


def near_copy(
    spec: ToolSpec, candidates: list[tuple[int, ToolSpec]], cutoff: float
) -> tuple[int, float] | None:
    """The earlier tool of another server that ``spec`` nearly repeats, with the description
    similarity, or None."""
    from rapidfuzz import fuzz, process
    from rapidfuzz.utils import default_process

    server = server_of(spec)
    others = [(i, t) for i, t in candidates if server is None or server_of(t) != server]
    found = process.extract(
        spec.description,
        [t.description for _, t in others],
        scorer=fuzz.ratio,
        processor=default_process,
        score_cutoff=cutoff,
        limit=None,
    )
    for _, score, k in found:
        i, earlier = others[k]
        names = _words(spec.name) ^ _words(earlier.name)
        if not names & (_words(spec.description) ^ _words(earlier.description)):
            return i, score / 100
    return None


@dataclass
class Shape:
    """What a walk over a parameter schema found: its depth, the enum values over budget, and
    the subschemas nested below the depth budget."""

    depth: int = 0
    extra_enum: list[list[Any]] = field(default_factory=list)
    too_deep: list[Any] = field(default_factory=list)


def shape(spec: ToolSpec, max_enum: int, max_depth: int) -> Shape:
    """A property, an array's items or an additional property is one level below its object
    (the parameters are level 1); ``anyOf`` / ``oneOf`` / ``allOf`` members are level with it."""
    out = Shape()
    stack: list[tuple[dict[str, Any], int, bool]] = [(spec.parameters, 0, False)]
    budget = 100_000  # nodes: a schema built in Python could refer to itself
    while stack and budget:
        budget -= 1
        node, depth, stepped = stack.pop()
        out.depth = max(out.depth, depth)
        if stepped and depth == max_depth + 1:
            out.too_deep.append(node)  # its enums are part of the subschema's tokens
        enum = node.get("enum")
        if depth <= max_depth and isinstance(enum, list) and len(enum) > max_enum:
            out.extra_enum.append(enum[max_enum:])
        for key, value in node.items():
            if key in ("properties", "patternProperties", "$defs", "definitions"):
                children = list(value.values()) if isinstance(value, dict) else []
                level = depth + 1
            elif key in ("items", "additionalProperties"):
                children, level = (value if isinstance(value, list) else [value]), depth + 1
            elif key in ("anyOf", "oneOf", "allOf"):
                children, level = (value if isinstance(value, list) else []), depth
            else:
                continue
            stack.extend((c, level, level > depth) for c in children if isinstance(c, dict))
    return out


__all__ = ["Shape", "near_copy", "schema_text", "shape", "skeleton"]
