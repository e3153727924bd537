"""Check results: one row per check, a report that becomes a DataFrame, JSON or an HTML table."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

Outcome = Literal["pass", "fail", "deviation", "skipped", "error"]


@dataclass
class CheckResult:
    """The outcome of one check.

    ``ref`` is the normative statement (``[MQTT-3.3.5-1]``) or section the check tests; ``deviation`` is
    the documented explanation when a broker is known to behave differently from the standard.
    """

    id: str
    title: str
    ref: str
    protocol: str
    outcome: Outcome
    expected: str
    observed: str
    deviation: str = ""
    still_serving: bool | None = None  # security probes: could others still use the broker afterwards?
    seconds: float = 0.0


@dataclass
class CheckReport:
    """All results of one run, with what was checked."""

    kind: str
    target: str
    broker: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(r.outcome for r in self.results))

    @property
    def ok(self) -> bool:
        """No failures and no errors (known deviations are reported, not failed)."""
        return not any(r.outcome in ("fail", "error") for r in self.results)

    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome in ("fail", "error")]

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.results])

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "broker": self.broker, "ok": self.ok,
                "counts": self.counts, "results": [asdict(r) for r in self.results]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.as_dict(), indent=indent)

    def markdown(self) -> str:
        """A Markdown table (the README's conformance table is generated from it)."""
        lines = ["| id | check | ref | protocol | outcome | note |", "|---|---|---|---|---|---|"]
        for r in self.results:
            note = r.deviation or (r.observed if r.outcome != "pass" else "")
            lines.append(f"| {r.id} | {r.title} | {r.ref} | {r.protocol} | {r.outcome} | {note.replace('|', '/')} |")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cols = ["id", "title", "ref", "protocol", "outcome", "observed", "deviation"]
        return str(self.frame()[cols].to_html(index=False))

    def __repr__(self) -> str:
        return f"<CheckReport {self.kind} {self.target} {self.counts}>"
