"""Errors ndvicube raises on purpose: each message is one paragraph naming the value and the fix.

Scripts catch :class:`NdviCubeError` and print only its message (no traceback), so a user sees
what to change instead of a stack of library frames.
"""

from __future__ import annotations

import errno


class NdviCubeError(Exception):
    """Base class: a condition the user can fix, explained in the message."""


class ConfigError(NdviCubeError, ValueError):
    """A configuration value is invalid; the message names the key, the value and the fix."""


class SourceUnreachableError(NdviCubeError):
    """The STAC source (API or JSON) cannot be reached or read."""


class ItemMetadataError(NdviCubeError):
    """A STAC item lacks metadata needed to compute correct values."""


class NoScenesError(NdviCubeError):
    """The search found no scene for an area, period and cloud limit."""


class NoFieldsError(NdviCubeError):
    """Screening left no field of an area that has no points either: nothing to make series of."""


class UnreadableAssetError(NdviCubeError):
    """An asset of a scene cannot be read (missing, corrupt, or failing after every retry)."""


class ReadDeadlineError(NdviCubeError):
    """A cube job's reads did not finish within the job's read deadline (stalled archive)."""


class StorageFullError(NdviCubeError):
    """The disk (or quota) filled up while a store was being written."""


class MissingDependencyError(NdviCubeError):
    """A module ndvicube needs is not installed: no retry can fix it, reinstalling does."""

    @classmethod
    def of(cls, error: ImportError) -> MissingDependencyError:
        """The message for ``error``: the module, and the command that installs what is needed."""
        name = error.name or str(error)
        return cls(
            f"The Python module {name!r} is not installed in the environment running this job "
            f"({error}). It is a dependency of ndvicube: install the project again in this "
            "environment with `python3 -m pip install -e .` from the ndvicube folder (or use "
            "the environment of workflow/envs/ndvicube.yaml), then run again."
        )


def is_disk_full(error: BaseException | None) -> bool:
    """Whether ``error`` or one of its causes is ENOSPC/EDQUOT (no space, or over quota)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__ or error.__context__
    return False


class BuildInterrupted(NdviCubeError):
    """The build was stopped from outside (Ctrl-C in Snakemake's process, where the cube job is a
    thread: :mod:`ndvicube.jobs.interrupt`)."""
