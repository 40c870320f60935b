"""The claims ledger: every seed paper's headline claim, holding or not, from ``python -m engine claims``."""
import json

from engine.cli import main

KEYS = {"paper", "claim", "source", "criterion", "paper_figure", "ours", "holds"}


def test_quick_claims_list_every_paper_with_a_verdict_and_the_closed_form_ones_hold(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path), "claims", "--quick", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) >= 18
    assert all(set(row) == KEYS and isinstance(row["holds"], bool) and row["ours"] for row in rows)
    assert {row["paper"] for row in rows} == {"000", "001", "002", "003", "004"}
    assert all(row["source"].startswith(f"[{row['paper']}]") and row["criterion"] for row in rows)
    exact = [row for row in rows if row["paper"] in ("000", "003") and "trained" not in row["ours"]]
    assert len(exact) == 8 and all(row["holds"] for row in exact), exact  # exact drifts: no training noise
    failing = [row for row in rows if not row["holds"]]
    assert all("likely reason" in row["ours"] or "not measured" in row["ours"] for row in failing), failing
    unmeasured = [row for row in rows if "not measured" in row["ours"]]
    assert all(not row["holds"] for row in unmeasured)  # never reported as holding


def test_steps_to_reach_is_the_fewest_from_which_the_error_stays_below_the_threshold():
    from engine.pipelines.sample import steps_to_reach

    assert steps_to_reach({2: 0.5, 4: 0.1, 8: 0.2, 16: 0.12, 32: 0.05}, 0.15) == 16  # 4 dips below, 8 leaves again
    assert steps_to_reach({2: 0.1, 4: 0.1}, 0.15) == 2
    assert steps_to_reach({2: 0.5, 4: 0.3}, 0.15) is None
    assert steps_to_reach({2: 0.1, 4: float("nan")}, 0.15) is None  # a NaN is never within the threshold
