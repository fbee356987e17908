"""The two ways rtser speaks to its users about their input: an error they can fix, a warning they
should know about. Every command prints either as one line."""

from __future__ import annotations

import importlib
from types import ModuleType


class RtserError(Exception):
    """A problem the user can fix; the CLI prints its message as one line and exits with status
    2."""


class RtserWarning(UserWarning):
    """Something the user should know about the input; the CLI prints it as one line on stderr."""


def require(module: str, extra: str, needed_for: str) -> ModuleType:
    """Import an optional dependency, or fail with the ``pip install 'rtser[extra]'`` that brings
    it.

    >>> pq = require("pyarrow.parquet", "batch", "rtser batch writes Parquet")
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise RtserError(f"{needed_for}: pip install 'rtser[{extra}]'") from None
