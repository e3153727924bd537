"""``python -m mqttlab.services --config FILE``: run the services process."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mqttlab.services")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="services.json written by the local backend")
    source.add_argument("--env", action="store_true", help="read MQTTLAB_* environment variables (containers)")
    args = parser.parse_args(argv)

    import os

    from . import _logging
    from ._config import ServicesConfig

    cfg = ServicesConfig.from_env(os.environ) if args.env else ServicesConfig.load(args.config)
    _logging.configure(cfg.log_file)
    import uvicorn

    from .app import create_app

    app = create_app(cfg)
    config = uvicorn.Config(app, host=cfg.api_host, port=cfg.api_port, log_config=None, access_log=False,
                            lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits 1 when it cannot bind
        logging.getLogger("mqttlab.services").error("services exited: %s", exc)
        return int(exc.code or 1) if isinstance(exc.code, int) else 1
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
