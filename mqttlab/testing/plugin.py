"""pytest plugin (auto-loaded through the ``pytest11`` entry point).

Fixtures: ``lab`` (one lab per session, on free ports), ``fresh_lab`` (a lab of its own per test),
``topic_ns`` (a unique topic prefix per test), ``make_device`` (unique devices on the session lab).
Markers: ``unit``, ``lab``, ``notebook``, ``compose`` (skipped with its reason where no Docker engine runs).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..devices import Device
from ..lab import Lab

_MARKERS = {
    "unit": "pure code, no processes",
    "lab": "starts a real local lab (mosquitto + services) on free ports",
    "notebook": "executes a notebook with papermill against the local lab",
    "compose": "needs a Docker engine to run the compose stack",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in _MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")


def _docker_unavailable() -> str | None:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return None
    except Exception as exc:  # no package, no socket, no daemon: all mean the same here
        return f"no Docker engine reachable ({type(exc).__name__}); the compose tier runs only where Docker exists"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("compose") for item in items):
        return
    reason = _docker_unavailable()
    if reason:
        for item in items:
            if item.get_closest_marker("compose"):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One local lab shared by the session (isolate tests with ``topic_ns`` and ``make_device``)."""
    with Lab.local(tmp_path_factory.mktemp("mqttlab-session")) as running:
        yield running


@pytest.fixture
def fresh_lab(tmp_path: Path) -> Iterator[Lab]:
    """A lab of this test's own, stopped afterwards."""
    with Lab.local(tmp_path / "lab") as running:
        yield running


@pytest.fixture
def topic_ns(request: pytest.FixtureRequest) -> str:
    """A topic prefix no other test uses, e.g. ``t/test_publish-1a2b3c``."""
    name = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in request.node.name)[:40]
    return f"t/{name}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def make_device(lab: Lab) -> Callable[..., Device]:
    """Create uniquely named devices on the session lab: ``make_device(auth="cert")``."""

    def factory(prefix: str = "dev", **kwargs: Any) -> Device:
        return lab.devices.add(f"{prefix}-{uuid.uuid4().hex[:8]}", **kwargs)

    return factory
