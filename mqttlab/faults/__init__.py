"""Fault injection: kill or restart the broker and the services, cut or slow a client's network, slow a subscriber.

``lab.faults`` is a :class:`Faults`; every fault returns what happened (timings, pids) for the notebook.
"""

from ._faults import FaultEvent, Faults
from ._proxy import NetworkProxy
from ._slow import SlowSubscriber

__all__ = ["FaultEvent", "Faults", "NetworkProxy", "SlowSubscriber"]
