"""Run Renkei or the bare reference under uvicorn for the benchmark, logging server time per request.

    .venv/bin/python -m bench.server renkei|reference --port 8101 --var-dir var/bench [--database-url URL]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn

from bench import reference
from bench.dataset import bench_settings
from renkei.app import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", choices=["renkei", "reference"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--var-dir", type=Path, default=Path("var/bench"))
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--timings", type=Path, required=True, help="file for one JSON line per request")
    args = parser.parse_args(argv)
    settings = bench_settings(args.var_dir, args.database_url)
    handler = logging.FileHandler(args.timings, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("renkei.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    logging.basicConfig(level=logging.WARNING)
    app = create_app(settings) if args.which == "renkei" else reference.create_app(settings)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
