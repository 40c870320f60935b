"""The claims ledger: every seed paper's headline claim, holding or not, from ``python -m engine claims``."""
import json

from engine.cli import main

KEYS = {"paper", "claim", "paper_figure", "ours", "holds"}


def test_quick_claims_list_every_paper_with_a_verdict_and_the_closed_form_ones_hold(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path), "claims", "--quick", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(set(row) == KEYS and isinstance(row["holds"], bool) and row["ours"] for row in rows)
    assert {row["paper"] for row in rows} == {"000", "001", "002", "003", "004"}
    exact = [row for row in rows if row["paper"] in ("000", "003") and "not measured" not in row["ours"]]
    assert len(exact) == 6 and all(row["holds"] for row in exact), exact  # exact drifts: no training noise
    unmeasured = [row for row in rows if "not measured" in row["ours"]]
    assert all(not row["holds"] for row in unmeasured)  # never reported as holding
