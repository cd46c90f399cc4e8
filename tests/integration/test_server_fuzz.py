"""Fuzz ``/v1/*`` with schemathesis against docs/openapi.json: no answer is a 5xx.

A real ``provmark serve`` (uvicorn) on SQLite and on PostgreSQL; schemathesis generates
valid and invalid requests from the published OpenAPI document (its coverage and
fuzzing phases, a fixed seed and a bounded number of examples per operation, so a run
takes some 15 s) and checks ``not_a_server_error``. Every error must be a 4xx problem
(or a 503 with Retry-After when a dependency is down, which it is not here).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_harness import Server, start_server

pytest.importorskip("schemathesis")

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "docs" / "openapi.json"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    db = None if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    srv = start_server(tmp_path, "--no-webhooks", db=db)
    yield srv
    srv.stop()


def fuzz(server: Server, role: str, paths: str, examples: int, report: Path) -> None:
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "run", str(OPENAPI),
        "--url", server.url, "-H", f"Authorization: Bearer {server.token(role)}",
        "--checks", "not_a_server_error", "--include-path-regex", paths,
        "--max-examples", str(examples), "--seed", "18", "--workers", "1",
        "--phases", "coverage,fuzzing", "--generation-database", "none", "--no-shrink",
        "--request-timeout", "30", "--no-color", "--report", "junit",
        "--report-junit-path", str(report),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=report.parent)
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "5xx" not in done.stdout


def test_no_request_to_v1_gets_a_server_error(server: Server, tmp_path: Path) -> None:
    # developer: ingest and every read; admin: tokens, webhooks and the audit log
    fuzz(server, "developer", "^/v1/", 5, tmp_path / "developer.xml")
    fuzz(server, "admin", "^/v1/(tokens|webhooks|audit)", 3, tmp_path / "admin.xml")
    log = server.log.read_text()
    assert "Traceback" not in log and "unexpected error" not in log, log[-4000:]
