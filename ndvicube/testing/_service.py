"""What the loopback servers share: start/stop and the context-manager protocol around them."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class LoopbackService:
    """A server that runs between :meth:`start` and :meth:`stop`; ``with`` does both."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
