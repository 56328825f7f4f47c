"""The server process's entry point (`renkei.asgi`, what `renkei serve` and uvicorn's workers import)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

from renkei.app import create_app


def test_the_server_entry_point_freezes_its_startup_heap_out_of_the_collectors_sight(tmp_path):
    env = {**os.environ, "RENKEI_VAR_DIR": str(tmp_path)}
    env.pop("RENKEI_DATABASE_URL", None)
    code = "import gc; gc.disable(); import renkei.asgi; print(gc.get_freeze_count())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # The application's modules, schemas and mappers: tens of thousands of objects.
    assert int(done.stdout.strip()) > 10_000


def test_building_an_application_freezes_nothing(settings):
    # Tests build many applications in one process; frozen objects would never be collected.
    before = gc.get_freeze_count()
    create_app(settings)
    assert gc.get_freeze_count() == before
