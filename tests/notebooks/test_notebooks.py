"""Every notebook runs top to bottom under papermill on the local backend, and reports keep their charts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mqttlab.report import NotebookFailed, execute, to_html

pytestmark = pytest.mark.notebook

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ARTIFACTS = ROOT / "artifacts" / "notebooks"
#: small sizes so CI stays fast; a user runs the defaults or bigger
CI_PARAMETERS: dict[str, dict[str, object]] = {
    "00-quickstart-tour": {"MESSAGES": 60, "RATE_HZ": 300.0},
    "01-fleet-live-traffic": {"DEVICES": 10, "RATE": 5.0, "LIVE_SECONDS": 3},
    "05-load-and-latency": {"PUB_MESSAGES": 40_000, "LATENCY_SECONDS": 2.0, "CONNECTIONS": 1000,
                            "ASSERT_TARGETS": False},
    "06-observability": {"DEVICES": 10, "SECONDS": 6},
    "07-security-and-conformance": {"RESTARTS": 10, "PER_ROUND": 500},
}


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/ is empty"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_with_parameters(path: Path) -> None:
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    dirty = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{path.name}: code cells {dirty} carry outputs; strip them before committing"
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code), f"{path.name}: no parameters cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    executed = ARTIFACTS / path.name
    state_dir = tmp_path / "lab"  # the notebook's lab lives here, so a failed run cannot leave it running
    try:
        execute(path, executed, {**CI_PARAMETERS.get(path.stem, {}), "STATE_DIR": str(state_dir)}, timeout=300)
    except NotebookFailed as exc:  # names the notebook and the cell; the executed copy stays as an artifact
        pytest.fail(str(exc), pytrace=False)
    finally:
        _stop_leftover_lab(state_dir)
    html = to_html(executed, executed.with_suffix(".html"))
    _assert_report_has_charts(html, executed)
    _assert_charts_render(executed.with_suffix(".html"))


def _assert_charts_render(html_file: Path) -> None:
    """Open the report in headless Chromium (offline) and check every chart drew its SVG."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return  # the payload check above still ran; scripts/test installs Debian's chromium
    done = subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--virtual-time-budget=15000", "--dump-dom", html_file.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    charts = done.stdout.split('class="plotly-graph-div')[1:]
    expected = html_file.read_text().count("Plotly.newPlot(")
    assert len(charts) == expected, f"{html_file.name}: {len(charts)} chart divs in the DOM, {expected} in the HTML"
    blank = [i for i, part in enumerate(charts) if 'class="main-svg"' not in part]
    assert not blank, f"{html_file.name}: charts {blank} did not render in Chromium (a script error?)"


def _stop_leftover_lab(state_dir: Path) -> None:
    from mqttlab import Lab
    from mqttlab.errors import LabNotRunningError

    if state_dir.exists():
        try:
            Lab.connect(state_dir).stop()
        except LabNotRunningError:
            pass  # the notebook stopped it itself, as it should


def _values(array: object) -> list[object]:
    """A plotly array's values: a list, or (plotly >= 6) a base64 typed array {"dtype", "bdata"}; NaN -> None."""
    if isinstance(array, dict):
        import base64

        import numpy as np

        values: list[object] = np.frombuffer(base64.b64decode(array["bdata"]),
                                             dtype=array["dtype"]).astype(float).tolist()
    else:
        values = list(array)  # type: ignore[call-overload]
    return [None if isinstance(v, float) and v != v else v for v in values]


def _html_figures(text: str) -> list[list[dict[str, object]]]:
    """The data argument of every Plotly.newPlot call in an HTML page."""
    decoder = json.JSONDecoder()
    out = []
    for match in re.finditer(r"Plotly\.newPlot\(\s*\"[0-9a-f-]+\",\s*", text):
        data, _ = decoder.raw_decode(text, match.end())
        out.append(data)
    return out


def _assert_report_has_charts(html: Path, executed: Path) -> None:
    """Each plotly figure of the executed notebook is in the HTML, with the same y values."""
    nb = json.loads(executed.read_text())
    figures = [o["data"]["application/vnd.plotly.v1+json"] for c in nb["cells"] if c["cell_type"] == "code"
               for o in c.get("outputs", []) if "application/vnd.plotly.v1+json" in o.get("data", {})]
    text = html.read_text()
    in_html = _html_figures(text)
    assert len(in_html) >= len(figures) > 0, f"{html.name}: {len(figures)} figures, {len(in_html)} Plotly.newPlot calls"
    html_ys = [_values(trace["y"]) for data in in_html for trace in data if "y" in trace]
    for fig in figures:
        for trace in fig["data"]:
            if "y" in trace:
                assert _values(trace["y"]) in html_ys, f"{html.name}: a chart's data is missing from the HTML"


def test_failure_names_notebook_and_cell(tmp_path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("X = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("assert X == 2, 'the lab misbehaved'")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, str(path))
    with pytest.raises(NotebookFailed) as err:
        execute(path, tmp_path / "out" / "broken.ipynb", {"X": 3})
    assert "broken.ipynb failed in cell" in err.value.message and "the lab misbehaved" in err.value.message
    assert err.value.executed.exists() and str(err.value.executed) in (err.value.hint or "")
