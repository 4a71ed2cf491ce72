"""Values synthesised from JSON schemas: tool arguments and structured output.

The emulator is not a language model, yet a tool call or a structured answer
must carry values that fit the client's schema. They come from a few fixed,
documented rules, so a test can predict them: values the user's message
offers (quoted strings, numbers, enum words), then a schema `default`, then a
typed default. The message's values are handed out in order of appearance,
one per property, so "add 3 and 4" gives `a=3, b=4`.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Final

# A quoted string: '...', "...", or typographic quotes. A single quote only
# opens and closes at a word boundary, so apostrophes ("it's") are not quotes.
_QUOTED = re.compile(
    r"(?<!\w)'([^'\n]+)'(?!\w)"
    r'|"([^"\n]+)"'
    r"|\u201c([^\u201d\n]+)\u201d"
    r"|\u2018([^\u2019\n]+)\u2019"
    r"|\u00ab([^\u00bb\n]+)\u00bb"
    r"|\u300c([^\u300d\n]+)\u300d"
)
# A number standing on its own: "3", "-2", "4.5"; not the "3" of "gpt-3.5"
# nor of "v3".
_NUMBER = re.compile(r"(?<![\w.\-])-?\d+(?:\.\d+)?(?!\w|\.\d)")

# Values for string formats a plain text would not satisfy.
_FORMAT_EXAMPLES: Final[Mapping[str, str]] = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00Z",
    "duration": "PT0S",
    "email": "user@example.com",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-0000-0000-000000000000",
}
# Deep enough for any sensible schema; stops a required self-reference.
_MAX_DEPTH = 24

_NO_FIT: Final = object()


class ValuePool:
    """The values a user's message offers, handed out in order of appearance.

    `text` is the whole message, the fallback for string properties. Spans in
    `exclude` (explicit tool-call syntax, whose values are used directly) are
    not searched for quoted strings or numbers. Numbers inside quotes belong
    to the quoted string, not to the numbers.
    """

    def __init__(self, text: str, exclude: Sequence[tuple[int, int]] = ()) -> None:
        self.text = text
        masked = mask_spans(text, exclude)
        self._strings: deque[str] = deque()
        spans: list[tuple[int, int]] = []
        for match in _QUOTED.finditer(masked):
            self._strings.append(next(group for group in match.groups() if group))
            spans.append(match.span())
        masked = mask_spans(masked, spans)
        self._numbers: deque[int | float] = deque(
            float(found) if "." in found else int(found)
            for found in _NUMBER.findall(masked)
        )

    def has_string(self) -> bool:
        """Whether a quoted string is left."""
        return bool(self._strings)

    def has_number(self) -> bool:
        """Whether a number is left."""
        return bool(self._numbers)

    def take_string(self) -> str | None:
        """Hand out the next quoted string, if any."""
        return self._strings.popleft() if self._strings else None

    def take_number(self) -> int | float | None:
        """Hand out the next number, if any."""
        return self._numbers.popleft() if self._numbers else None

    def mentions(self, word: str) -> bool:
        """Whether `word` appears in the message as a whole word (any case)."""
        pattern = rf"(?<!\w){re.escape(word)}(?!\w)"
        return re.search(pattern, self.text, re.IGNORECASE) is not None


def mask_spans(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """Blank out spans of `text` (keeping every other character's position)."""
    if not spans:
        return text
    characters = list(text)
    for start, end in spans:
        characters[start:end] = " " * (end - start)
    return "".join(characters)


def value_for_schema(schema: Mapping[str, Any], pool: ValuePool) -> Any:
    """Synthesise a whole document (structured output) for `schema`.

    A schema that says nothing about its shape gets an object.
    """
    synthesiser = _Synthesiser(schema, pool)
    resolved = synthesiser.resolve(schema)
    if not any(
        key in resolved
        for key in ("type", "properties", "items", "enum", "const", "anyOf", "oneOf")
    ):
        return {}
    return synthesiser.value(schema, 0)


def arguments_for_schema(
    schema: Mapping[str, Any],
    pool: ValuePool,
    positional: Sequence[Any] = (),
    keywords: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Synthesise a tool call's arguments object for its parameters `schema`.

    `positional` and `keywords` are values written out in the message with
    call syntax, `name(3)` or `name(a=1)`; positional values go to the
    properties in their declared order. A single positional object is taken
    as the keywords when the first property is not itself an object.
    """
    synthesiser = _Synthesiser(schema, pool)
    resolved = synthesiser.resolve(schema)
    declared = resolved.get("properties")
    properties: Mapping[str, Any] = declared if isinstance(declared, dict) else {}
    names = list(properties)
    first = properties[names[0]] if names else None
    given = dict(keywords or {})
    if (
        len(positional) == 1
        and isinstance(positional[0], dict)
        and not (isinstance(first, dict) and synthesiser.kind(first) == "object")
    ):
        given = {**positional[0], **given}
        positional = ()
    for name, value in zip(names, positional, strict=False):
        given.setdefault(name, value)
    return synthesiser.object_value(resolved, 0, given)


class _Synthesiser:
    """Walks one schema (resolving `$ref` against its root) to build a value."""

    def __init__(self, root: Mapping[str, Any], pool: ValuePool) -> None:
        self._root = root
        self._pool = pool

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        """Follow `$ref`s and merge `allOf`, keeping sibling keywords."""
        for _ in range(_MAX_DEPTH):
            ref = schema.get("$ref")
            if not isinstance(ref, str):
                break
            target = self._lookup(ref)
            siblings = {key: value for key, value in schema.items() if key != "$ref"}
            schema = {**target, **siblings}
        parts = schema.get("allOf")
        if isinstance(parts, list) and parts:
            merged: dict[str, Any] = {
                key: value for key, value in schema.items() if key != "allOf"
            }
            for part in parts:
                if isinstance(part, dict):
                    _merge_into(merged, self.resolve(part))
            return merged
        return schema

    def _lookup(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#"):
            return {}  # remote references are not fetched
        node: Any = self._root
        for token in ref[1:].split("/"):
            if not token:
                continue
            key = token.replace("~1", "/").replace("~0", "~")
            node = node.get(key) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}

    def kind(self, schema: Mapping[str, Any]) -> str:
        """The JSON type a value for `schema` takes (the first non-null one)."""
        schema = self.resolve(schema)
        declared = schema.get("type")
        if isinstance(declared, list):
            kinds = [item for item in declared if item != "null"]
            return str(kinds[0]) if kinds else "null"
        if isinstance(declared, str):
            return declared
        if "properties" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return "string"

    def value(self, schema: Mapping[str, Any], depth: int) -> Any:
        """Synthesise a value for `schema` by the documented rules."""
        if depth > _MAX_DEPTH:
            return None
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return self._enum_value(enum)
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                return self.value(self._usable_branch(branches), depth + 1)
        kind = self.kind(schema)
        if kind == "object":
            return self.object_value(schema, depth, {})
        if kind == "array":
            return self._array_value(schema, depth)
        if kind == "integer":
            return self._integer_value(schema)
        if kind == "number":
            return self._number_value(schema)
        if kind == "boolean":
            default = schema.get("default")
            return default if isinstance(default, bool) else False
        if kind == "null":
            return None
        return self._string_value(schema)

    def _enum_value(self, enum: list[Any]) -> Any:
        for choice in enum:
            if isinstance(choice, str) and choice and self._pool.mentions(choice):
                return choice
        return enum[0]

    def _usable_branch(self, branches: list[Any]) -> Mapping[str, Any]:
        """The first branch that is not `null`; null only when nothing else."""
        candidates = [branch for branch in branches if isinstance(branch, dict)]
        for branch in candidates:
            resolved = self.resolve(branch)
            if self.kind(resolved) != "null" and resolved.get("const", 0) is not None:
                return branch
        return candidates[0] if candidates else {}

    def object_value(
        self, schema: Mapping[str, Any], depth: int, given: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Required properties, plus optional ones only when `given` has them."""
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            properties = {}
        required = schema.get("required")
        required_names = set(required) if isinstance(required, list) else set()
        result: dict[str, Any] = {}
        for name, subschema in properties.items():
            sub = subschema if isinstance(subschema, dict) else {}
            if name in given:
                fitted = self.conform(given[name], sub)
                if fitted is not _NO_FIT:
                    result[name] = fitted
                    continue
            if name in required_names:
                result[name] = self.value(sub, depth + 1)
        return result

    def _array_value(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            return [
                self.value(item if isinstance(item, dict) else {}, depth + 1)
                for item in prefix
            ]
        items = schema.get("items")
        item_schema: Mapping[str, Any] = items if isinstance(items, dict) else {}
        least = _count(schema.get("minItems")) or 0
        most = _count(schema.get("maxItems"))
        values: list[Any] = []
        resolved = self.resolve(item_schema)
        plain = not any(key in resolved for key in ("enum", "const", "anyOf", "oneOf"))
        kind = self.kind(resolved)
        # An array of plain strings or numbers takes all the message offers.
        available = {
            "string": self._pool.has_string,
            "integer": self._pool.has_number,
            "number": self._pool.has_number,
        }.get(kind)
        while (
            plain and available and available() and (most is None or len(values) < most)
        ):
            values.append(self.value(item_schema, depth + 1))
        while len(values) < least:
            values.append(self.value(item_schema, depth + 1))
        return values

    def _integer_value(self, schema: Mapping[str, Any]) -> int:
        number = self._pool.take_number()
        default = schema.get("default")
        if number is not None:
            value = round(number)
        elif isinstance(default, int) and not isinstance(default, bool):
            value = default
        else:
            value = 0
        low, high = _bounds(schema)
        if low is not None:
            limit, exclusive = low
            value = max(value, math.floor(limit) + 1 if exclusive else math.ceil(limit))
        if high is not None:
            limit, exclusive = high
            value = min(value, math.ceil(limit) - 1 if exclusive else math.floor(limit))
        return value

    def _number_value(self, schema: Mapping[str, Any]) -> int | float:
        number = self._pool.take_number()
        default = schema.get("default")
        value: int | float
        if number is not None:
            value = number
        elif isinstance(default, int | float) and not isinstance(default, bool):
            value = default
        else:
            value = 0.0
        low, high = _bounds(schema)
        if low is not None and not _above(value, low):
            value = low[0] + 1 if low[1] else low[0]
        if high is not None and not _below(value, high):
            value = high[0] - 1 if high[1] else high[0]
        if low is not None and high is not None and not _above(value, low):
            value = (low[0] + high[0]) / 2  # a narrow exclusive range
        return value

    def _string_value(self, schema: Mapping[str, Any]) -> str:
        text = self._pool.take_string()
        default = schema.get("default")
        fmt = schema.get("format")
        if text is None:
            if isinstance(default, str):
                text = default
            elif isinstance(fmt, str) and fmt in _FORMAT_EXAMPLES:
                text = _FORMAT_EXAMPLES[fmt]
            else:
                text = self._pool.text
        most = _count(schema.get("maxLength"))
        if most is not None:
            text = text[:most]
        return text.ljust(_count(schema.get("minLength")) or 0, "x")

    def conform(self, value: Any, schema: Mapping[str, Any]) -> Any:
        """Return `value` made to fit `schema` (e.g. "3" for an integer), or _NO_FIT."""
        schema = self.resolve(schema)
        if "const" in schema:
            return value if value == schema["const"] else _NO_FIT
        enum = schema.get("enum")
        if isinstance(enum, list):
            return value if value in enum else _NO_FIT
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list):
                for branch in branches:
                    if isinstance(branch, dict):
                        fitted = self.conform(value, branch)
                        if fitted is not _NO_FIT:
                            return fitted
                return _NO_FIT
        declared = schema.get("type")
        if declared is None:
            return value
        kinds = declared if isinstance(declared, list) else [declared]
        for kind in kinds:
            fitted = _conform_to_type(value, kind)
            if fitted is not _NO_FIT:
                return fitted
        return _NO_FIT


def _conform_to_type(value: Any, kind: object) -> Any:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer":
        if is_number and float(value).is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                return _NO_FIT
    elif kind == "number":
        if is_number:
            return value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return _NO_FIT
            return int(number) if number.is_integer() and "." not in value else number
    elif kind == "string":
        if isinstance(value, str):
            return value
        if is_number:
            return str(value)
    else:
        python_type = {
            "boolean": bool,
            "array": list,
            "object": dict,
            "null": type(None),
        }.get(str(kind))
        if python_type is not None and isinstance(value, python_type):
            return value
    return _NO_FIT


def _merge_into(target: dict[str, Any], part: Mapping[str, Any]) -> None:
    """Merge one `allOf` part: properties and required are united."""
    for key, value in part.items():
        if key == "properties" and isinstance(value, dict):
            target["properties"] = {**target.get("properties", {}), **value}
        elif key == "required" and isinstance(value, list):
            existing = target.get("required", [])
            target["required"] = [*existing, *(n for n in value if n not in existing)]
        else:
            target.setdefault(key, value)


Bound = tuple[float, bool]  # (limit, exclusive)


def _bounds(schema: Mapping[str, Any]) -> tuple[Bound | None, Bound | None]:
    """Lower and upper limits, draft-4 (boolean exclusive) and later styles."""

    def number(key: str) -> float | None:
        value = schema.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return None

    low: Bound | None = None
    high: Bound | None = None
    if (minimum := number("minimum")) is not None:
        low = (minimum, schema.get("exclusiveMinimum") is True)
    if (maximum := number("maximum")) is not None:
        high = (maximum, schema.get("exclusiveMaximum") is True)
    if (exclusive_low := number("exclusiveMinimum")) is not None and (
        low is None or exclusive_low >= low[0]
    ):
        low = (exclusive_low, True)
    if (exclusive_high := number("exclusiveMaximum")) is not None and (
        high is None or exclusive_high <= high[0]
    ):
        high = (exclusive_high, True)
    return low, high


def _above(value: float, low: Bound) -> bool:
    return value > low[0] if low[1] else value >= low[0]


def _below(value: float, high: Bound) -> bool:
    return value < high[0] if high[1] else value <= high[0]


def _count(value: object) -> int | None:
    """A schema's count keyword (minItems, maxLength, ...), if it is valid."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None
