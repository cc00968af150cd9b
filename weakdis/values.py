"""The one place where configuration values are turned into their declared types.

Values arrive as YAML scalars (sweep files) or strings (``weakdis train --set key=value``); a
dataclass field's type hint says what they must become. ``coerce`` converts one value, and
``coerce_fields`` a mapping of them against a dataclass; both raise ``WeakdisError`` naming the key,
the value and the type expected.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Mapping

from weakdis.errors import WeakdisError

_NULL_WORDS = ("none", "null")
_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")


def parse_bool(value: Any) -> bool:
    """``true/false``, ``yes/no``, ``on/off``, ``1/0`` (any case) or a bool; ValueError otherwise."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE_WORDS:
            return True
        if lowered in _FALSE_WORDS:
            return False
        raise ValueError(f"{value!r} is not a boolean")
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise ValueError(f"{value!r} is not a boolean")


def _split_optional(hint: Any) -> tuple[Any, bool]:
    args = typing.get_args(hint)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else hint), True
    return hint, False


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "a boolean (true/false)", str: "a string",
               dict: "a mapping"}


def _type_name(hint: Any) -> str:
    base, optional = _split_optional(hint)
    origin = typing.get_origin(base) or base
    name = _TYPE_NAMES.get(origin, getattr(origin, "__name__", str(origin)))
    return f"{name} or null" if optional else name


def coerce(value: Any, hint: Any, *, key: str, source: str, strict: bool = False) -> Any:
    """``value`` as the type ``hint`` (``int``, ``float``, ``bool``, ``str``, ``dict``, ``X | None``).

    ``strict=False`` (the default) also reads strings such as ``"3"``, ``"1e-4"``, ``"true"`` and
    ``"null"``, as ``--set`` gives them; ``strict=True`` accepts only values of the right YAML type
    (an int for an int, any number for a float). Floats must be finite; an int must be whole.
    """
    base, optional = _split_optional(hint)
    origin = typing.get_origin(base) or base
    is_null_word = isinstance(value, str) and value.strip().lower() in _NULL_WORDS and not strict
    if value is None or (is_null_word and origin is not str):
        if optional:
            return None
        raise WeakdisError(f"{source}: {key} must not be null; expected {_type_name(hint)}")
    if is_null_word and optional:
        return None

    def invalid() -> WeakdisError:
        return WeakdisError(f"{source}: {key}={value!r} is invalid; expected {_type_name(hint)}")

    if origin is bool:
        if strict and not isinstance(value, bool):
            raise invalid()
        try:
            return parse_bool(value)
        except ValueError:
            raise invalid() from None
    if origin is int:
        if isinstance(value, bool) or (strict and not isinstance(value, int)):
            raise invalid()
        try:
            number = float(value) if isinstance(value, str) else value
            if not math.isfinite(float(number)) or float(number) != int(float(number)):
                raise ValueError
            return int(number)
        except (TypeError, ValueError, OverflowError):
            raise invalid() from None
    if origin is float:
        if isinstance(value, bool) or (strict and not isinstance(value, (int, float))):
            raise invalid()
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise invalid() from None
        if strict and not math.isfinite(number):
            raise invalid()
        return number
    if origin is str:
        if strict and (not isinstance(value, str) or not value):
            raise WeakdisError(f"{source}: {key}={value!r} is invalid; expected a non-empty string")
        if isinstance(value, (dict, list)):
            raise invalid()
        return str(value)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise invalid()
        return dict(value)
    return value


def field_types(cls: type) -> dict[str, Any]:
    """Field name -> resolved type hint of a dataclass (class variables excluded)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def coerce_fields(cls: type, values: Mapping[str, Any], *, source: str, strict: bool = False) -> dict[str, Any]:
    """Every value of ``values`` as the type of the dataclass field of that name.

    A key that is not a field is an error naming the key and the fields allowed.
    """
    types = field_types(cls)
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise WeakdisError(f"{source}: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(types))}")
    return {key: coerce(value, types[key], key=key, source=source, strict=strict) for key, value in values.items()}
