"""Live rules on the local stack: sources, evaluation, actions (republish, console, http), metrics."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ._engine import CompiledRule, compile_sql
from ._errors import NoMatch, RuleRuntimeError
from ._events import NODE
from ._store import RuleStore, now_rfc3339
from ._templates import render, render_value
from ._topic import is_filter_valid
from ._values import UNDEFINED

log = logging.getLogger("mqttlab.services.rules")
HOPS = "mqttlab-rule-hops"  # user property naming the rules a message went through: stops a rule feeding itself
MAX_HOPS = 8
METRIC_KEYS = ("matched", "passed", "failed", "failed.exception", "failed.no_result", "actions.total",
               "actions.success", "actions.failed", "actions.failed.out_of_service", "actions.failed.unknown",
               "actions.discarded")
Publish = Callable[[str, bytes, int, bool, dict[str, Any]], None]


class RuleError(ValueError):
    """A rule definition the API refuses (400)."""


@dataclass
class Metrics:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METRIC_KEYS, 0))
    seconds: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=300))
    rate_max: float = 0.0

    def matched(self) -> None:
        self.counts["matched"] += 1
        now = int(time.time())
        if self.seconds and self.seconds[-1][0] == now:
            self.seconds[-1] = (now, self.seconds[-1][1] + 1)
        else:
            self.seconds.append((now, 1))

    def view(self) -> dict[str, Any]:
        now = int(time.time())
        last = next((n for s, n in reversed(self.seconds) if s == now - 1), 0)
        window = [n for s, n in self.seconds if s > now - 300]
        self.rate_max = max(self.rate_max, float(last))
        return {**self.counts, "matched.rate": float(last), "matched.rate.max": self.rate_max,
                "matched.rate.last5m": round(sum(window) / 300, 3)}


@dataclass
class LiveRule:
    record: dict[str, Any]
    compiled: CompiledRule
    metrics: Metrics = field(default_factory=Metrics)


def _validate_actions(actions: Any) -> list[Any]:
    if not isinstance(actions, list):
        raise RuleError("actions must be a list")
    for action in actions:
        if isinstance(action, str):
            if ":" not in action:
                raise RuleError(f"bad action {action!r}: use 'type:name' or an object with 'function'")
            continue
        if not isinstance(action, dict) or action.get("function") not in ("republish", "console", "http"):
            raise RuleError(f"bad action {json.dumps(action)[:100]}: function must be republish, console or http")
        args = action.get("args", {})
        if action["function"] == "republish" and not (isinstance(args, dict) and isinstance(args.get("topic"), str)
                                                        and args["topic"]):
            raise RuleError("republish needs args.topic")
        if action["function"] == "http" and not (isinstance(args, dict) and str(args.get("url", "")).startswith(
                ("http://", "https://"))):
            raise RuleError("http needs args.url (http:// or https://)")
    return actions


class RuleEngine:
    """Owns the rules of one lab. ``publish`` sends on the broker; ``want_topics`` subscribes filters."""

    def __init__(self, store: RuleStore, publish: Publish, want_topics: Callable[[list[str]], None],
                 on_output: Callable[[str, Any], None] | None = None) -> None:
        self.store, self._publish, self._want = store, publish, want_topics
        self.on_output = on_output
        self.live: dict[str, LiveRule] = {}
        self._lock = threading.RLock()
        self._http = ThreadPoolExecutor(max_workers=4, thread_name_prefix="rule-http")
        self._last_msg: Any = None
        for rid, record in store.rules.items():
            try:
                self.live[rid] = LiveRule(record, compile_sql(record["sql"]))
            except Exception as exc:  # a stored rule that no longer compiles must not stop the others
                log.error("stored rule %s does not compile: %s", rid, exc)
        self._subscribe_all()

    # ------------------------------------------------------------------ CRUD
    def _subscribe_all(self) -> None:
        filters = sorted({f for r in self.live.values() if r.record.get("enable", True) for f in r.compiled.topic_filters})
        if filters:
            self._want(filters)

    def upsert(self, body: dict[str, Any], rule_id: str | None = None, *, create: bool = False) -> dict[str, Any]:
        """Create (``create=True``: an existing id is an error) or create-or-replace a rule."""
        if not isinstance(body, dict):
            raise RuleError("the body must be a JSON object")
        rid = rule_id if rule_id is not None else body.get("id")
        if rid is not None and (not isinstance(rid, str) or not rid.strip()):
            raise RuleError("empty rule id is not allowed")
        sql = body.get("sql")
        if not isinstance(sql, str):
            raise RuleError("sql is required")
        compiled = compile_sql(sql)  # RuleSqlError -> 400 with line and column
        for topic_filter in compiled.topic_filters:
            if not is_filter_valid(topic_filter):
                raise RuleError(f"invalid topic filter in FROM: {topic_filter!r}")
        actions = _validate_actions(body.get("actions", []))
        with self._lock:
            if create and rid in self.live:
                raise RuleError("rule id already exists")
            rid = rid or RuleStore.new_id()
            old = self.live.get(rid)
            now = now_rfc3339()
            record = {"id": rid, "name": body.get("name", old.record.get("name", "") if old else ""), "sql": sql,
                      "actions": actions, "enable": bool(body.get("enable", True)),
                      "description": body.get("description", ""), "metadata": body.get("metadata", {}),
                      "from": list(compiled.sources), "created_at": old.record["created_at"] if old else now,
                      "last_modified_at": now}
            self.live[rid] = LiveRule(record, compiled, old.metrics if old else Metrics())
            self.store.rules[rid] = record
            self.store.save()
        self._subscribe_all()
        return record

    def delete(self, rule_id: str) -> bool:
        with self._lock:
            if self.live.pop(rule_id, None) is None:
                return False
            self.store.rules.pop(rule_id, None)
            self.store.save()
            return True

    # ------------------------------------------------------------------ sources
    def on_message(self, topic: str, payload: bytes, qos: int, retain: bool, props: dict[str, Any]) -> None:
        hops = [h for h in props.get("User-Property", {}).get(HOPS, "").split(",") if h]
        columns = {"id": uuid.uuid4().hex.upper(), "clientid": UNDEFINED, "username": UNDEFINED,
                   "payload": _text_or_bytes(payload), "peerhost": UNDEFINED, "topic": topic,
                   "qos": qos, "flags": {"retain": retain, "dup": False}, "pub_props": props,
                   "publish_received_at": int(time.time() * 1000), "timestamp": int(time.time() * 1000),
                   "node": NODE, "event_type": "message_publish"}
        for rule in list(self.live.values()):
            if rule.record.get("enable", True) and rule.compiled.matches("message_publish", topic):
                if rule.record["id"] in hops or len(hops) >= MAX_HOPS:
                    rule.metrics.counts["actions.discarded"] += 1  # the rule's own output coming back: a loop
                    continue
                self._run(rule, columns, hops)

    def on_event(self, columns: dict[str, Any]) -> None:
        for rule in list(self.live.values()):
            if rule.record.get("enable", True) and rule.compiled.matches(columns["event_type"], None):
                self._run(rule, columns, [])

    def _run(self, rule: LiveRule, columns: dict[str, Any], hops: list[str]) -> None:
        m = rule.metrics
        m.matched()
        try:
            output = rule.compiled.run({**columns, "metadata": {"rule_id": rule.record["id"]}})
        except NoMatch:
            m.counts["failed"] += 1
            m.counts["failed.no_result"] += 1
            return
        except RuleRuntimeError as exc:
            m.counts["failed"] += 1
            m.counts["failed.exception"] += 1
            log.info("rule %s failed: %s", rule.record["id"], exc.message)
            return
        outputs = output if isinstance(output, list) else [output]
        if not outputs:
            m.counts["failed"] += 1
            m.counts["failed.no_result"] += 1
            return
        m.counts["passed"] += 1
        for out in outputs:
            if self.on_output is not None:
                self.on_output(rule.record["id"], out)
            for action in rule.record.get("actions", []):
                self._act(rule, action, out, hops)

    # ------------------------------------------------------------------ actions
    def _act(self, rule: LiveRule, action: Any, out: dict[str, Any], hops: list[str]) -> None:
        c = rule.metrics.counts
        c["actions.total"] += 1
        if isinstance(action, str):  # an EMQX sink ("http:name"): it lives in EMQX, not here
            c["actions.failed"] += 1
            c["actions.failed.out_of_service"] += 1
            return
        try:
            kind = action["function"]
            args = action.get("args", {})
            if kind == "console":
                log.info("rule %s output", rule.record["id"], extra={"rule_id": rule.record["id"], "output": out})
            elif kind == "republish":
                self._republish(rule, args, out, hops)
            else:
                self._http.submit(self._post, rule, args, out)
                return  # counted when the request completes
            c["actions.success"] += 1
        except Exception as exc:  # a failing action is counted, never fatal
            c["actions.failed"] += 1
            c["actions.failed.unknown"] += 1
            log.info("rule %s action failed: %s", rule.record["id"], exc)

    def _republish(self, rule: LiveRule, args: dict[str, Any], out: dict[str, Any], hops: list[str]) -> None:
        topic = render(args["topic"], out)
        if not topic or "+" in topic or "#" in topic:
            raise RuleRuntimeError(f"republish topic {topic!r} is not a valid topic name")
        qos = render_value(args.get("qos", "${qos}"), out)
        qos = int(qos) if isinstance(qos, (int, str)) and str(qos) in ("0", "1", "2") else 0
        retain = render_value(args.get("retain", "${retain}"), out)
        retain = retain is True or retain == "true"
        payload = render(args.get("payload", "${payload}"), out)
        props: dict[str, Any] = {}
        user = render_value(args.get("user_properties", "${pub_props.'User-Property'}"), out)
        pairs = list(user.items()) if isinstance(user, dict) else [tuple(p) for p in user] if isinstance(user, list) else []
        pairs = [(str(k), str(v)) for k, v in pairs if k != HOPS]
        pairs.append((HOPS, ",".join([*hops, rule.record["id"]])))
        props["User-Property"] = pairs
        for key, value in (args.get("mqtt_properties") or {}).items():
            props[key] = render(str(value), out)
        self._publish(topic, payload.encode(), qos, retain, props)

    def _post(self, rule: LiveRule, args: dict[str, Any], out: dict[str, Any]) -> None:
        import httpx

        c = rule.metrics.counts
        try:
            body = render(args.get("body", "${.}"), out) if "body" in args else json.dumps(out)
            headers = {str(k): render(str(v), out) for k, v in (args.get("headers") or {}).items()}
            headers.setdefault("content-type", "application/json")
            resp = httpx.request(args.get("method", "POST"), render(args["url"], out), content=body.encode(),
                                 headers=headers, timeout=float(args.get("timeout", 5)))
            ok = 200 <= resp.status_code < 300
            c["actions.success" if ok else "actions.failed"] += 1
            if not ok:
                c["actions.failed.unknown"] += 1
        except Exception as exc:  # unreachable endpoint: counted as failed, the rule carries on
            c["actions.failed"] += 1
            c["actions.failed.out_of_service"] += 1
            log.info("rule %s http action failed: %s", rule.record["id"], exc)

    def close(self) -> None:
        self._http.shutdown(wait=False, cancel_futures=True)


def _text_or_bytes(payload: bytes) -> str | bytes:
    """Payloads stay binary unless they are UTF-8 (then functions and templates see text, as in EMQX)."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload
