"""``lab.rules``: one client for EMQX's rules REST API, served by the lab locally and by EMQX in compose."""

from __future__ import annotations

import builtins
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import ApiError, ConfigError

if TYPE_CHECKING:
    import pandas as pd


class RuleApiError(ApiError):
    """The rules API refused a request (400 bad SQL or body, 404 unknown rule, ...)."""


class RuleNoMatch(RuleApiError):
    """``test()``: the context does not match FROM, or WHERE is false (EMQX's 412 NOT_MATCH)."""


class RuleTestError(RuleApiError):
    """``test()``: the SQL does not parse or failed at run time (EMQX's 400)."""


class Rules:
    """Create, test, deploy and watch rules. ``base_url`` is the services (or EMQX dashboard) URL."""

    def __init__(self, base_url: str, auth: tuple[str, str], timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=base_url, auth=auth, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200,)) -> Any:
        resp = self._http.request(method, path, json=body)
        if resp.status_code not in expect:
            try:
                data = resp.json()
            except ValueError:
                data = {"message": resp.text}
            code, message = data.get("code"), data.get("message", resp.text)
            cls = RuleNoMatch if resp.status_code == 412 else RuleTestError if path.endswith("rule_test") else RuleApiError
            hint = {404: "lab.rules.list() shows the rule ids", 412: "check FROM against the context and the WHERE",
                    415: "send JSON"}.get(resp.status_code, "see the EMQX rule SQL reference")
            raise cls(f"{method} {path}: {resp.status_code} {message}", status=resp.status_code, code=code, hint=hint)
        return resp.json() if resp.content else None

    # ------------------------------------------------------------------ CRUD
    def create(self, sql: str, actions: builtins.list[Any] | None = None, *, id: str | None = None,
               name: str = "", description: str = "", enable: bool = True) -> dict[str, Any]:
        """Create a rule (``PUT`` when ``id`` is given, so re-running a notebook cell is idempotent)."""
        body = {"sql": sql, "actions": actions or [], "name": name, "description": description, "enable": enable}
        if id is not None:
            result: dict[str, Any] = self._call("PUT", f"/api/v5/rules/{id}", body)
        else:
            result = self._call("POST", "/api/v5/rules", body, expect=(201,))
        return result

    def update(self, rule_id: str, **fields: Any) -> dict[str, Any]:
        current = self.get(rule_id)
        body: dict[str, Any] = {k: current[k] for k in ("sql", "actions", "name", "description", "enable") if k in current}
        body.update(fields)
        result: dict[str, Any] = self._call("PUT", f"/api/v5/rules/{rule_id}", body)
        return result

    def enable(self, rule_id: str, enabled: bool = True) -> dict[str, Any]:
        return self.update(rule_id, enable=enabled)

    def get(self, rule_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/api/v5/rules/{rule_id}")
        return result

    def list(self, **filters: Any) -> builtins.list[dict[str, Any]]:
        data: builtins.list[dict[str, Any]] = self._http.get("/api/v5/rules", params=filters).raise_for_status().json()["data"]
        return data

    def delete(self, rule_id: str) -> None:
        self._call("DELETE", f"/api/v5/rules/{rule_id}", expect=(204,))

    # ------------------------------------------------------------------ dry runs
    def test(self, sql: str, event_type: str = "message_publish", **context: Any) -> Any:
        """Dry-run ``sql`` on a context; returns the output, raises :class:`RuleNoMatch` or :class:`RuleTestError`.

        A dict or list ``payload`` is sent JSON-encoded, as a device would publish it.
        """
        if isinstance(context.get("payload"), (dict, builtins.list)):
            context["payload"] = json.dumps(context["payload"])
        return self._call("POST", "/api/v5/rule_test", {"sql": sql, "context": {"event_type": event_type, **context}})

    def golden(self, path: str | Path) -> pd.DataFrame:
        """Run a YAML file of cases through ``rule_test``: one row per case, ``ok`` says whether it held."""
        import pandas as pd

        rows = []
        for case in load_golden(path):
            outcome, detail = check_case(self, case)
            rows.append({"name": case["name"], "ok": outcome, "detail": detail})
        return pd.DataFrame(rows)

    def editor(self, sql: str | None = None, **kwargs: Any) -> Any:
        """An ipywidgets editor: SQL, a context, Test (rule_test) and Deploy buttons."""
        from ._widget import rule_editor

        return rule_editor(self, sql, **kwargs) if sql else rule_editor(self, **kwargs)

    # ------------------------------------------------------------------ watching
    def metrics(self, rule_id: str) -> pd.DataFrame:
        """The rule's counters as EMQX counts them (matched, passed, failed.*, actions.*)."""
        import pandas as pd

        data = self._call("GET", f"/api/v5/rules/{rule_id}/metrics")["metrics"]
        return pd.DataFrame({"metric": builtins.list(data), "value": builtins.list(data.values())})

    def reset_metrics(self, rule_id: str) -> None:
        self._call("PUT", f"/api/v5/rules/{rule_id}/metrics/reset", expect=(204,))

    def tail(self, rule_id: str, *, count: int | None = None, timeout: float = 10.0,
             from_start: bool = False) -> Iterator[Any]:
        """Yield the rule's outputs as they happen (local lab; the last 1,000 are kept).

        Starts after the newest output unless ``from_start``; stops after ``count`` outputs or
        ``timeout`` seconds without a new one.
        """
        after = 0
        if not from_start:
            recent = self._call("GET", f"/api/rules/{rule_id}/outputs")
            after = recent[-1]["seq"] if recent else 0
        seen, idle, wake = 0, 0.0, threading.Event()
        while count is None or seen < count:
            batch = self._call("GET", f"/api/rules/{rule_id}/outputs?after={after}")
            for item in batch[: None if count is None else count - seen]:
                after = item["seq"]
                seen += 1
                yield item["output"]
            if batch:
                idle = 0.0
                continue
            if idle >= timeout:
                return
            wake.wait(0.05)  # polling cadence of the HTTP tail
            idle += 0.05


def load_golden(path: str | Path) -> builtins.list[dict[str, Any]]:
    """Cases from YAML: ``- {name, sql, context, expect: {...} | expect_error: no_match | <text>}``."""
    import yaml

    try:
        cases = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read golden file {path}: {exc}", hint="a YAML list of cases") from exc
    if not isinstance(cases, builtins.list):
        raise ConfigError(f"golden file {path} must hold a list of cases", hint="- name: ...\n  sql: ...")
    for i, case in enumerate(cases):
        if not isinstance(case, dict) or "sql" not in case or ("expect" not in case and "expect_error" not in case):
            raise ConfigError(f"golden case {i} in {path} needs sql and expect (or expect_error)",
                              hint="expect is a subset of the output; expect_error is no_match or part of the error")
        case.setdefault("name", f"case {i}")
        case.setdefault("context", {})
    return cases


def _subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, builtins.list):
        return isinstance(actual, builtins.list) and len(expected) == len(actual) and all(
            _subset(e, a) for e, a in zip(expected, actual, strict=True))
    return bool(expected == actual)


def check_case(rules: Rules, case: dict[str, Any]) -> tuple[bool, str]:
    """Run one golden case; (held, what happened)."""
    context = dict(case.get("context", {}))
    try:
        output = rules.test(case["sql"], **context)
    except RuleNoMatch:
        return case.get("expect_error") == "no_match", "no match"
    except RuleTestError as exc:
        wanted = case.get("expect_error")
        return isinstance(wanted, str) and wanted != "no_match" and wanted in exc.message, exc.message
    if "expect" not in case:
        return False, f"expected an error, got {json.dumps(output)[:200]}"
    ok = _subset(case["expect"], output)
    return ok, json.dumps(output)[:300]
