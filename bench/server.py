"""Run Renkei or the bare reference under uvicorn for the benchmark, logging server time per request.

    .venv/bin/python -m bench.server renkei|reference --port 8101 --var-dir var/bench [--database-url URL] \
        [--workers N]

With `--workers` > 1 uvicorn starts N worker processes (each builds the application itself, from the
settings passed in the environment) and each appends its timings to the same file, one line per request.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

import uvicorn

from bench import reference
from bench.dataset import bench_settings
from renkei.app import create_app, freeze_startup_heap

_ENV = "RENKEI_BENCH_SERVER"


def make_app() -> Any:
    """The application named in the environment (uvicorn's factory, once in each worker process)."""
    which, var_dir, database_url, timings = os.environ[_ENV].split("\n")
    settings = bench_settings(Path(var_dir), database_url or None)
    # Appending: several workers share the file (one short line per write, so lines never interleave).
    handler = logging.FileHandler(timings, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("renkei.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    logging.basicConfig(level=logging.WARNING)
    app = create_app(settings) if which == "renkei" else reference.create_app(settings)
    freeze_startup_heap()  # as renkei.asgi does, for both servers
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", choices=["renkei", "reference"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--var-dir", type=Path, default=Path("var/bench"))
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--timings", type=Path, required=True, help="file for one JSON line per request")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args(argv)
    args.timings.write_text("", encoding="utf-8")
    os.environ[_ENV] = "\n".join([args.which, str(args.var_dir), args.database_url or "",
                                  str(args.timings.resolve())])
    if args.workers == 1:
        uvicorn.run(make_app(), host="127.0.0.1", port=args.port, log_config=None, log_level="warning",
                    access_log=False)
    else:
        uvicorn.run("bench.server:make_app", factory=True, workers=args.workers, host="127.0.0.1",
                    port=args.port, log_config=None, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
