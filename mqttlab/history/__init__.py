"""History and replay: the recorder, its stores, queries into pandas, charts, export and replay.

Names load on first use: the services process imports the recorder and the store without the
notebook-side client (pyarrow, numpy, pandas).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {"History": "._client", "Record": "._record", "device_of": "._record", "flatten": "._record",
         "Replay": "._replay", "ReplayReport": "._replay"}

if TYPE_CHECKING:
    from ._client import History
    from ._record import Record, device_of, flatten
    from ._replay import Replay, ReplayReport

__all__ = ["History", "Record", "Replay", "ReplayReport", "device_of", "flatten"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name], __name__), name)
