"""Faults an object store or a STAC API shows in ordinary operation, injected on purpose.

A :class:`Faults` describes them: a rate of error statuses (503/429 by default), a rate of
connections dropped without an answer, a rate of bodies cut short (full ``Content-Length``, then
the connection closes halfway), files that are permanently missing (404) or corrupt (their
bytes scrambled after the TIFF header, so the header parses and the pixels do not), paths that
never get an answer (the connection accepted, then nothing until the server stops), and
redirects (every request answered ``302 Found`` with ``Location`` at another server). The loopback
servers of :mod:`ndvicube.testing` take one and log, per request, which fault they injected.

Decisions come from one seeded random generator, so a test run is repeatable in how many faults
it injects, though not in which request gets which (threads answer in any order).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Collection
from dataclasses import dataclass, field

#: What a request's answer was turned into (None: answered normally).
ERROR, DROP, TRUNCATE, MISSING, CORRUPT = "error", "drop", "truncate", "missing", "corrupt"
SILENT, REDIRECT = "silent", "redirect"


@dataclass(frozen=True)
class Faults:
    """Which faults to inject, and into which requests."""

    error_rate: float = 0.0
    """Fraction of requests answered with one of ``error_statuses``."""
    error_statuses: tuple[int, ...] = (503, 429)
    drop_rate: float = 0.0
    """Fraction of requests whose connection is closed before any answer."""
    truncate_rate: float = 0.0
    """Fraction of requests whose body stops halfway, then the connection closes."""
    missing: Collection[str] = ()
    """URL paths answered 404, always (a file removed from the archive)."""
    corrupt: Collection[str] = ()
    """URL paths served with their bytes after ``corrupt_after`` scrambled, always."""
    corrupt_after: int = 1024
    silent: Collection[str] = ()
    """URL paths never answered: the request is read, then nothing is sent (a stalled server)."""
    redirect_to: str = ""
    """A base URL: requests (those of ``only``, if set) are answered ``302 Found`` with
    ``Location: redirect_to + path``; ``redirect_to`` may be this server (a loop)."""
    only: tuple[str, ...] = ()
    """Apply the random faults only to paths ending with one of these (e.g. ``(".tif",)``)."""
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _lock: threading.Lock = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rates = (self.error_rate, self.drop_rate, self.truncate_rate)
        if any(r < 0 for r in rates) or sum(rates) > 1:
            raise ValueError(f"fault rates must be >= 0 and sum to <= 1, got {rates}")
        object.__setattr__(self, "_rng", random.Random(self.seed))
        object.__setattr__(self, "_lock", threading.Lock())

    def decide(self, path: str) -> str | None:
        """The fault to inject into a request for ``path``, or None to answer it normally."""
        if path in self.missing:
            return MISSING
        if path in self.corrupt:
            return CORRUPT
        if path in self.silent:
            return SILENT
        if self.only and not path.endswith(tuple(self.only)):
            return None
        if self.redirect_to:
            return REDIRECT
        with self._lock:
            draw = self._rng.random()
        for fault, rate in ((ERROR, self.error_rate), (DROP, self.drop_rate)):
            if draw < rate:
                return fault
            draw -= rate
        return TRUNCATE if draw < self.truncate_rate else None

    def error_status(self) -> int:
        """Which error status to send this time."""
        with self._lock:
            return self._rng.choice(self.error_statuses)


def scramble(data: bytes, offset: int, start: int) -> bytes:
    """``data`` (read at file ``offset``) with every byte at or after ``start`` inverted."""
    cut = max(0, start - offset)
    return data[:cut] + bytes(b ^ 0xFF for b in data[cut:])
