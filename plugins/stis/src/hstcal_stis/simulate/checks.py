"""Checks of simulator arguments at the edge, with errors that name the parameter."""

from __future__ import annotations

import math

import numpy as np


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, str)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        as_float = float(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if not math.isfinite(as_float) or as_float != int(as_float):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    result = int(as_float)
    if result < low or (high is not None and result > high):
        bound = f">= {low}" if high is None else f"within {low}..{high}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return result


def _check_float(name: str, value, *, low: float = -math.inf, strict: bool = False) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(result) or result < low or (strict and result == low):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be finite and {op} {low}, got {value!r}")
    return result
