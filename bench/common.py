"""Helpers shared by the benchmarks: percentiles, a table printer, machine facts, results file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


class Unavailable(RuntimeError):
    """A service a benchmark needs (PostgreSQL, NATS) is not there; the message says why."""


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    """p50/p90/p99/max in microseconds."""
    s = sorted(samples_ns)
    if not s:
        return {"p50_us": 0.0, "p90_us": 0.0, "p99_us": 0.0, "max_us": 0.0}

    def at(q: float) -> float:
        return s[min(len(s) - 1, int(q * len(s)))] / 1000

    return {"p50_us": at(0.50), "p90_us": at(0.90), "p99_us": at(0.99), "max_us": s[-1] / 1000}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d"),
        # other work on the machine depresses every rate: say how busy it was
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def table(title: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return title
    cols = list(rows[0])
    width = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols}
    lines = [
        title,
        "  ".join(c.ljust(width[c]) for c in cols),
        "  ".join("-" * width[c] for c in cols),
    ]
    lines += ["  ".join(_fmt(r.get(c)).ljust(width[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    return path


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
