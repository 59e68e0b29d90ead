"""Calendar months as search partitions.

Each month of ``[start, end]`` is searched by its own job into its own file, so extending
``end`` (or moving ``start`` earlier) adds jobs for the new months only: the months already
searched keep their files, and the cube job reads only the scenes it has not seen.
"""

from __future__ import annotations

import datetime as dt


def months(start: dt.date, end: dt.date) -> list[str]:
    """``YYYY-MM`` of every calendar month that overlaps ``[start, end]``."""
    out, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def month_window(month: str, start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of ``month`` (``YYYY-MM``), clipped to ``[start, end]``."""
    year, mon = (int(part) for part in month.split("-"))
    first = dt.date(year, mon, 1)
    following = dt.date(year + 1, 1, 1) if mon == 12 else dt.date(year, mon + 1, 1)
    last = following - dt.timedelta(days=1)
    return max(first, start), min(last, end)
