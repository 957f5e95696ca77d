"""A string that never shows itself by accident.

API credentials pass through logs, tracebacks, `repr(config)` and validation errors; wrapping
them means each of those prints `***`, and getting the value back takes an explicit
`reveal()` at the one place that signs requests.
"""

from __future__ import annotations

import hmac
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema

MASK = "***"


class Secret:
    """An opaque credential: `str()` and `repr()` are `***`, `reveal()` is the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret wraps a str, not {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        """The actual value: call it only where the exchange client needs it."""
        return self._value

    def __repr__(self) -> str:
        return MASK

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # Constant-time, so comparing credentials doesn't leak how much of them matched.
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        """Accept a non-empty str (or a Secret), hold a Secret, and dump as `***` in every mode.

        A single before→str→after chain rather than a union, so a wrong type yields one
        plain "must be a string" error instead of one per union branch.
        """
        from_text = core_schema.no_info_after_validator_function(
            cls, core_schema.str_schema(min_length=1)
        )
        return core_schema.no_info_before_validator_function(
            _unwrap,
            from_text,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda _: MASK),
        )


def _unwrap(value: Any) -> Any:
    """Let an existing Secret through the str check (e.g. when a model is rebuilt)."""
    return value.reveal() if isinstance(value, Secret) else value
