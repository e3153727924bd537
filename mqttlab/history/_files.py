"""Exporting and importing recorded messages: JSON lines, CSV, Parquet; with safe output paths."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import ConfigError
from ._schema import MESSAGES

FORMATS = ("jsonl", "csv", "parquet")
_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}


def detect_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"unknown export format {fmt!r}", hint=f"one of {', '.join(FORMATS)}")
        return fmt
    found = _SUFFIX.get(path.suffix.lower())
    if found is None:
        raise ConfigError(f"cannot tell the format of {path.name}", hint="name it .jsonl, .csv or .parquet, or pass format=")
    return found


def safe_output_path(path: str | Path, *, overwrite: bool = False, base: str | Path | None = None) -> Path:
    """Where to write: never silently over an existing file, never through a symlink, never outside ``base``."""
    target = Path(path).expanduser()
    if base is not None:
        root = Path(base).expanduser().resolve()
        target = (root / target).resolve() if not target.is_absolute() else target.resolve()
        if root != target and root not in target.parents:
            raise ConfigError(f"{path} is outside {root}", hint="write inside the chosen directory, or choose another base")
    if target.is_symlink():
        raise ConfigError(f"{target} is a symbolic link", hint="give the real path")
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} already exists", hint="pass overwrite=True (CLI: --force) or another name")
    if not target.parent.is_dir():
        raise ConfigError(f"the directory {target.parent} does not exist", hint="create it first")
    return target


def _text(payload: bytes) -> str | None:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


def write(table: pa.Table, target: Path, fmt: str) -> int:
    """Write ``table`` (the store's message columns); payloads stay exact (base64 in text formats)."""
    rows = int(table.num_rows)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, target)
        return rows
    records = table.to_pylist()
    columns = ["seq", "ts", "topic", "device", "qos", "retain", "props", "payload_b64", "payload_text"]
    with open(target, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns) if fmt == "csv" else None
        if writer is not None:
            writer.writeheader()
        for r in records:
            payload = bytes(r["payload"] or b"")
            out = {"seq": r["seq"], "ts": r["ts"], "topic": r["topic"], "device": r["device"], "qos": r["qos"],
                   "retain": r["retain"], "props": r["props"], "payload_b64": base64.b64encode(payload).decode(),
                   "payload_text": _text(payload)}
            if writer is not None:
                writer.writerow(out)
            else:
                fh.write(json.dumps(out, separators=(",", ":")) + "\n")
    return rows


def read(path: str | Path, fmt: str | None = None) -> pa.Table:
    """Read an export back into the store's message columns (for import or replay)."""
    source = Path(path).expanduser()
    if not source.is_file():
        raise ConfigError(f"{source} does not exist", hint="give the path of an export (.jsonl, .csv or .parquet)")
    kind = detect_format(source, fmt)
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(source)
    rows: list[dict[str, Any]] = []
    with open(source, newline="") as fh:
        items = csv.DictReader(fh) if kind == "csv" else (json.loads(line) for line in fh if line.strip())
        for i, item in enumerate(items):
            try:
                rows.append({"seq": int(item.get("seq") or i + 1), "ts": int(item["ts"]), "topic": str(item["topic"]),
                             "device": item.get("device") or None, "payload": base64.b64decode(item["payload_b64"]),
                             "qos": int(item.get("qos") or 0),
                             "retain": str(item.get("retain")).lower() in ("true", "1"),
                             "props": item.get("props") or None, "client_id": None})
            except (KeyError, ValueError, TypeError) as exc:
                raise ConfigError(f"{source.name} line {i + 1}: {exc}",
                                  hint="files written by export() can be read back") from None
    return pa.Table.from_pylist(rows, schema=MESSAGES)
