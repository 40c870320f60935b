"""docs/claims.md's ledger, written from the rows of ``python -m engine claims --json``.

``python -m engine claims --json > claims.json`` measures; ``python -m engine.claims_reference claims.json`` rewrites
the part of docs/claims.md between its two markers (a table of every column, the measuring commit and date above
it). A test fails when the table's stated columns (paper, claim, source, criterion, the paper's figure) are not the
ledger's as ``engine.pipelines.claims.CLAIMS`` states them now, or a claim has no row.
"""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from engine.pipelines.claims import CLAIMS

DOC = Path(__file__).resolve().parents[1] / "docs" / "claims.md"
BEGIN = "<!-- ledger: made by `python -m engine.claims_reference`, do not edit by hand -->"
END = "<!-- end of ledger -->"
COLUMNS = {"paper": "paper", "claim": "claim", "source": "where the paper makes it",
           "criterion": "holds when (decided from the paper, before measuring)", "paper_figure": "the paper's figure",
           "ours": "ours", "holds": "holds"}
STATED = ("paper", "claim", "source", "criterion", "paper_figure")


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, whitespace folded."""
    return re.sub(r"\s+", " ", str(text)).replace("|", "\\|").strip()


def _uncell(text: str) -> str:
    return text.strip().replace("\\|", "|")


def ledger(rows: list[dict], *, stamp: str) -> str:
    """The ledger as Markdown: the stamp line, then one table row per claim."""
    head = "| " + " | ".join(COLUMNS.values()) + " |\n|" + "---|" * len(COLUMNS)
    body = "\n".join("| " + " | ".join(_cell(("yes" if row[key] else "no") if key == "holds" else row[key])
                                      for key in COLUMNS) + " |" for row in rows)
    return f"{stamp}\n\n{head}\n{body}"


def table_rows(text: str) -> list[dict]:
    """The rows of the ledger table in ``text`` (docs/claims.md) as dicts of their columns."""
    inside = text.split(BEGIN, 1)[-1].split(END, 1)[0]
    rows = []
    for line in inside.splitlines():
        if not line.startswith("| ") or line.startswith("| paper |"):
            continue
        cells = [_uncell(cell) for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows.append(dict(zip(COLUMNS, cells)))
    return rows


def stale_rows(text: str) -> list[str]:
    """What in docs/claims.md's table differs from the ledger's statements now (empty when current)."""
    written = table_rows(text)
    problems = [] if len(written) == len(CLAIMS) else [f"{len(written)} rows for {len(CLAIMS)} claims"]
    for spec, row in zip(CLAIMS, written):
        problems += [f"{spec.claim!r}: {key} differs" for key in STATED if _cell(spec.stated()[key]) != _cell(row[key])]
    return problems


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=DOC.parent, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    files = [arg for arg in args if arg != "--quick"]
    if len(files) != 1:
        print("usage: python -m engine.claims_reference CLAIMS.json [--quick] (the output of `python -m engine "
              "claims --json`; --quick: it was a --quick run)", file=sys.stderr)
        return 2
    rows = json.loads(Path(files[0]).read_text())
    quick = " --quick" if "--quick" in args else ""
    stamp = (f"Measured {time.strftime('%Y-%m-%d')} at commit {_commit()} on {platform.machine()} with "
             f"{os.cpu_count()} cores (`python -m engine claims{quick} --json`).")
    text = DOC.read_text()
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    DOC.write_text(f"{before}{BEGIN}\n{ledger(rows, stamp=stamp)}\n{END}{after}")
    print(f"wrote the ledger ({len(rows)} claims) into {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
