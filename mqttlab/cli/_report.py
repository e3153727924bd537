"""``mqttlab report NOTEBOOK [-p key value ...]``."""

from __future__ import annotations

import ast
import time
from pathlib import Path
from typing import Any

import click


def _value(text: str) -> Any:
    """Parameters arrive as text: numbers, booleans, None and quoted strings are parsed, the rest stays text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return {"true": True, "false": False}.get(text.lower(), text)


@click.command()
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-p", "--parameter", "params", nargs=2, multiple=True, metavar="KEY VALUE",
              help="Notebook parameter (papermill style); repeatable.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file [default: reports/<notebook>.html]")
@click.option("--hide-input", is_flag=True, help="Hide code cells in the report.")
@click.option("--timeout", type=float, default=600, show_default=True, help="Per-cell timeout in seconds.")
def report(notebook: Path, params: tuple[tuple[str, str], ...], output: Path | None, hide_input: bool,
           timeout: float) -> None:
    """Execute a notebook top to bottom and write a self-contained HTML report."""
    from ..report import build_report

    output = output or Path("reports") / (notebook.stem + ".html")
    t0 = time.perf_counter()
    html = build_report(notebook.resolve(), output.resolve(), {k: _value(v) for k, v in params},
                        hide_input=hide_input, timeout=timeout)
    click.echo(f"report written to {html} ({html.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t0:.1f}s); "
               f"executed notebook {html.with_suffix('.ipynb')}")
