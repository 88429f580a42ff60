"""Units and how sizes are written: bytes, GiB, parameter counts. Pure functions, no torch."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MIB = 1024**2
GIB = 1024**3
MAX_MEMORY = 1024**5
"""A memory size above 1 PiB is a typo, not a GPU."""


def format_gib(size: int) -> str:
    """`12.37 GiB`: how every memory figure is written, by the linter and the plugin."""
    return f"{size / GIB:.2f} GiB"


def format_params(count: int) -> str:
    """`76.77M`, `1.56B`: how parameter counts are written in messages."""
    if count >= 10**15:  # too large for a float: whole billions
        return f"{count // 10**9}B"
    if count >= 10**9:
        return f"{count / 1e9:.2f}B"
    return f"{count / 1e6:.2f}M"


_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": MIB,
    "mb": MIB,
    "mib": MIB,
    "g": GIB,
    "gb": GIB,
    "gib": GIB,
}


def parse_memory(text: str) -> int:
    """Bytes from a size such as `12GB`, `11.5GiB`, `10500MiB` or a plain byte count.

    GB/MB are read as GiB/MiB, as nvidia-smi and PyTorch report memory.
    """
    s = text.strip().lower().replace(" ", "").replace("_", "")
    number = s.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = s[len(number) :]
    if unit not in _UNITS or not number:
        raise ValueError(f"cannot read memory size {text!r} (write e.g. 12GB, 10500MiB)")
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"cannot read memory size {text!r} (write e.g. 12GB, 10500MiB)") from None
    if not value.is_finite():
        raise ValueError(f"cannot read memory size {text!r} (write e.g. 12GB, 10500MiB)")
    if value <= 0:
        raise ValueError(f"memory size must be positive, got {text!r}")
    shown = repr(text) if len(text) <= 40 else repr(text[:37] + "...")
    if value.adjusted() > 20:  # checked first: the product would overflow Decimal's range
        raise ValueError(f"memory size {shown} is too large (over 1 PiB)")
    if value.adjusted() < -20:
        raise ValueError(f"memory size {shown} is less than one byte")
    size = value * _UNITS[unit]
    if size > MAX_MEMORY:
        raise ValueError(f"memory size {shown} is too large (over 1 PiB)")
    if size < 1:
        raise ValueError(f"memory size {shown} is less than one byte")
    return int(size)
