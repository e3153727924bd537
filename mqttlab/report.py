"""Execute a notebook with papermill and export it as a self-contained HTML report."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ConfigError, MqttlabError


class NotebookFailed(MqttlabError):
    """A notebook cell raised; names the notebook, the cell and where the executed copy is."""

    def __init__(self, message: str, *, notebook: str, cell: int | None, executed: Path, hint: str | None = None):
        super().__init__(message, hint)
        self.notebook, self.cell, self.executed = notebook, cell, executed


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def execute(notebook: Path, executed: Path, parameters: dict[str, Any] | None = None, *,
            timeout: float = 600, renderer: str = "plotly_mimetype+notebook") -> Path:
    """Run ``notebook`` top to bottom into ``executed``; a failing cell raises :class:`NotebookFailed`."""
    import papermill as pm

    if not notebook.is_file():
        raise ConfigError(f"notebook {notebook} does not exist", hint="pass a path such as notebooks/00-quickstart-tour.ipynb")
    executed.parent.mkdir(parents=True, exist_ok=True)
    with _env(PLOTLY_RENDERER=renderer):
        try:
            pm.execute_notebook(str(notebook), str(executed), parameters=parameters or {}, kernel_name="python3",
                                cwd=str(notebook.parent), execution_timeout=int(timeout), progress_bar=False)
        except pm.PapermillExecutionError as exc:
            raise NotebookFailed(
                f"{notebook.name} failed in cell {exc.cell_index} (execution count {exc.exec_count}): "
                f"{exc.ename}: {exc.evalue}",
                notebook=str(notebook), cell=exc.cell_index, executed=executed,
                hint=f"the executed notebook, with the error in place, is kept at {executed}",
            ) from None
    _strip_widget_state(executed)
    return executed


def _strip_widget_state(path: Path) -> None:
    """Drop saved widget state (megabytes per notebook, useless in a static report)."""
    data = json.loads(path.read_text())
    if data.get("metadata", {}).pop("widgets", None) is not None:
        path.write_text(json.dumps(data, indent=1))


def to_html(executed: Path, output: Path, *, hide_input: bool = False) -> Path:
    """Export an executed notebook to HTML; plotly figures keep their inlined ``text/html`` form."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    exporter = HTMLExporter(exclude_input=hide_input, exclude_input_prompt=hide_input, exclude_output_prompt=hide_input)
    body, _ = exporter.from_notebook_node(nb)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(body)
    return output


def build_report(notebook: Path, output: Path, parameters: dict[str, Any] | None = None, *,
                 hide_input: bool = False, timeout: float = 600) -> Path:
    """Execute ``notebook`` and write ``output`` (HTML); the executed ``.ipynb`` is kept beside it."""
    executed = execute(notebook, output.with_suffix(".ipynb"), parameters, timeout=timeout)
    return to_html(executed, output, hide_input=hide_input)
