"""Order statistics shared by the library (``summit eval`` latencies) and the harnesses in
``benchmarks/``. No dependencies beyond the standard library."""

from __future__ import annotations

import math
from collections.abc import Iterable

METHODS = ("linear", "nearest")


def percentile(values: Iterable[float], q: float, *, method: str = "linear", empty: float = math.nan) -> float:
    """The q-th percentile (0..100) of ``values``, in any order.

    ``method="linear"`` interpolates between the two nearest order statistics (numpy's default);
    ``"nearest"`` takes the nearest one (position rounded half to even, numpy's ``"nearest"``).
    ``empty`` is returned when there are no values (NaN unless the caller says otherwise)."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    if method not in METHODS:
        raise ValueError(f"unknown percentile method {method!r} (one of {', '.join(METHODS)})")
    xs = sorted(float(v) for v in values)
    if not xs:
        return empty
    if method == "nearest":
        return xs[round(q / 100 * (len(xs) - 1))]
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
