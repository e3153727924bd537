"""Known, documented deviations of particular brokers: a failing check listed here is reported as a deviation.

A deviation is only applied when the check fails; a broker that behaves as the standard says passes.
"""

from __future__ import annotations

import re

_MOSQUITTO_2_0: dict[str, str] = {
    "C13": ("mosquitto 2.0 waits for the full will delay even when the session ends first (session expiry 0); "
            "the standard says the will is sent when the session ends, whichever comes first."),
    "C28": ("mosquitto 2.0 sweeps keep-alive timeouts on a coarse timer: a silent client with keep alive 2 s "
            "was disconnected after about 5-6 s here instead of 3 s (1.5x)."),
    "C26": ("mosquitto 2.0 answers QoS 2 publishes beyond its receive maximum with PUBREC reason 0x97 "
            "(quota exceeded) and keeps the connection, where the standard asks for DISCONNECT 0x93."),
}

KNOWN: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (re.compile(r"mosquitto.*\b2\.0\.\d+"), _MOSQUITTO_2_0),
]


def explain(broker: str, check_id: str) -> str:
    """The documented deviation of ``broker`` for ``check_id``, or "" when none is known."""
    for pattern, table in KNOWN:
        if pattern.search(broker.lower()) and check_id in table:
            return table[check_id]
    return ""


def known(broker: str) -> dict[str, str]:
    for pattern, table in KNOWN:
        if pattern.search(broker.lower()):
            return dict(table)
    return {}
