"""Rows of the fault-injection suite's table: case, interrupted at, re-run result, verdict."""
from __future__ import annotations

import json
import os

ROWS: list[dict] = []
HEAD = ("case", "interrupted at", "re-run result", "verdict")
NOTES: list[str] = []


def add(case: str, point: str, rerun: str, verdict: str) -> None:
    """One row; a verdict's problems are cut to their first lines (the test's failure has them all).
    Rows are also appended to $SEAL_FAULTS_TABLE (JSON lines) as they come, for a run that is stopped."""
    if len(verdict) > 400:
        verdict = verdict[:400] + "..."
    row = {"case": case, "interrupted at": point, "re-run result": rerun, "verdict": " ".join(verdict.split())}
    ROWS.append(row)
    if os.environ.get("SEAL_FAULTS_TABLE"):
        with open(os.environ["SEAL_FAULTS_TABLE"], "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


def render(rows: list | None = None, notes: list | None = None) -> str:
    """The table of `rows` (default ROWS) under `notes` (default NOTES): a pytest-xdist controller
    renders the rows its worker sent in the reports' user_properties (tests/conftest.py)."""
    rows, notes = (ROWS if rows is None else rows), (NOTES if notes is None else notes)
    widths = [min(60, max(len(h), *(len(r[h]) for r in rows))) for h in HEAD]
    lines = ["fault-injection suite: " + "; ".join(notes)] if notes else []
    lines.append(" | ".join(h.ljust(w) for h, w in zip(HEAD, widths)))
    lines.append("-+-".join("-" * w for w in widths))
    for row in rows:
        cells = [row[h] for h in HEAD]
        # wrap long cells over continuation lines rather than cut them
        chunks = [[c[i:i + w] for i in range(0, max(len(c), 1), w)] for c, w in zip(cells, widths)]
        for k in range(max(len(c) for c in chunks)):
            lines.append(" | ".join((c[k] if k < len(c) else "").ljust(w) for c, w in zip(chunks, widths)))
    return "\n".join(lines)
