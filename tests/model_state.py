"""Checks that two LangChain objects hold the same state, as pydantic keeps it.

The fast constructors (`_chunk_objects`, `_result_objects`) skip validation;
these checks compare what they build with what validation builds, in every
part a user, LangChain or pydantic can read.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def same_object(fast: BaseModel, validated: BaseModel) -> None:
    """Equal as pydantic sees them, and in every part pydantic keeps."""
    assert type(fast) is type(validated)
    assert fast == validated
    assert fast.__dict__ == validated.__dict__
    assert [type(v) for v in fast.__dict__.values()] == [
        type(v) for v in validated.__dict__.values()
    ]
    assert list(fast.__dict__) == list(validated.__dict__)  # field order
    assert fast.model_fields_set == validated.model_fields_set
    assert fast.__pydantic_extra__ == validated.__pydantic_extra__
    assert fast.__pydantic_private__ == validated.__pydantic_private__
    assert fast.model_dump() == validated.model_dump()
    assert repr(fast) == repr(validated)


def same_tree(fast: Any, validated: Any, where: str = "") -> None:
    """`same_object` for every object inside too; dicts in the same key order."""
    assert type(fast) is type(validated), where
    if isinstance(fast, BaseModel):
        same_object(fast, validated)
        for name, value in fast.__dict__.items():
            same_tree(value, validated.__dict__[name], f"{where}.{name}")
    elif isinstance(fast, dict):
        assert list(fast) == list(validated), where
        for key, value in fast.items():
            same_tree(value, validated[key], f"{where}[{key!r}]")
    elif isinstance(fast, list):
        assert len(fast) == len(validated), where
        for index, (one, other) in enumerate(zip(fast, validated, strict=True)):
            same_tree(one, other, f"{where}[{index}]")
    else:
        assert fast == validated, where


def containers(value: Any, found: dict[int, Any] | None = None) -> dict[int, Any]:
    """Every list, dict and set inside `value` (a fields-set too), by id."""
    found = {} if found is None else found
    if isinstance(value, BaseModel):
        for part in (
            value.__dict__,
            value.__pydantic_fields_set__,
            value.__pydantic_extra__,
        ):
            containers(part, found)
    elif isinstance(value, list | dict | set) and id(value) not in found:
        found[id(value)] = value
        items = value.values() if isinstance(value, dict) else value
        for item in items:
            containers(item, found)
    return found
