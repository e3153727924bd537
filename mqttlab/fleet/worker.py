"""``python -m mqttlab.fleet.worker HOST PORT [NAME]``: a fleet worker that joins a coordinator."""

from __future__ import annotations

import asyncio
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        sys.stderr.write("usage: python -m mqttlab.fleet.worker HOST PORT [NAME]\n")
        return 2
    from ._bench import raise_fd_limit
    from ._workers import worker_main

    raise_fd_limit()
    asyncio.run(worker_main(args[0], int(args[1]), args[2] if len(args) > 2 else "worker"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
