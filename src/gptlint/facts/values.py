"""The marker for a value that cannot be known without running the config."""

from __future__ import annotations


class _Unknown:
    """A value that static reading cannot determine (a call, an `if`, `os.environ` ...)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        raise TypeError("UNKNOWN has no truth value; compare with `is UNKNOWN`")


UNKNOWN = _Unknown()


def is_known(value: object) -> bool:
    """True when `value` was determined statically."""
    return value is not UNKNOWN
