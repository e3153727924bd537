"""The ``mqttlab`` command line. Errors print their message and hint, never a traceback."""

from __future__ import annotations

import logging
import sys

import click

from ..errors import MqttlabError
from ._check import check
from ._compose import compose
from ._devices import devices
from ._doctor import doctor
from ._fleet import bench, fleet
from ._history import history, replay
from ._lab import down, logs, status, up
from ._report import report


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
@click.version_option(package_name="mqttlab", message="mqttlab %(version)s")
def cli(verbose: bool) -> None:
    """mqttlab: a real MQTT stack for testing IoT device stacks, from Jupyter and the shell."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


for command in (up, down, status, logs, doctor, devices, report, fleet, bench, compose, history, replay, check):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code (2 for mqttlab errors)."""
    try:
        rc = cli.main(args=argv, prog_name="mqttlab", standalone_mode=False)
    except MqttlabError as exc:
        click.echo(f"error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"  hint: {exc.hint}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
