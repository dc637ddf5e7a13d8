"""Rows of the fault-injection suite's table: case, interrupted at, re-run result, verdict."""
from __future__ import annotations

ROWS: list[dict] = []
HEAD = ("case", "interrupted at", "re-run result", "verdict")
NOTES: list[str] = []


def add(case: str, point: str, rerun: str, verdict: str) -> None:
    ROWS.append({"case": case, "interrupted at": point, "re-run result": rerun, "verdict": verdict})


def render() -> str:
    widths = [min(60, max(len(h), *(len(r[h]) for r in ROWS))) for h in HEAD]
    lines = ["fault-injection suite: " + "; ".join(NOTES)] if NOTES else []
    lines.append(" | ".join(h.ljust(w) for h, w in zip(HEAD, widths)))
    lines.append("-+-".join("-" * w for w in widths))
    for row in ROWS:
        cells = [row[h] for h in HEAD]
        # wrap long cells over continuation lines rather than cut them
        chunks = [[c[i:i + w] for i in range(0, max(len(c), 1), w)] for c, w in zip(cells, widths)]
        for k in range(max(len(c) for c in chunks)):
            lines.append(" | ".join((c[k] if k < len(c) else "").ljust(w) for c, w in zip(chunks, widths)))
    return "\n".join(lines)
