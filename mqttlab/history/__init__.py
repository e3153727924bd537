"""History and replay: the recorder, its stores, queries into pandas, charts, export and replay."""

from ._client import History
from ._record import Record, device_of, flatten
from ._replay import Replay, ReplayReport

__all__ = ["History", "Record", "Replay", "ReplayReport", "device_of", "flatten"]
