"""The documentation stays true to the code: the README is short and for users, docs/cli.md's reference is the one
the parser makes now, and every relative link of the README and docs/ leads to a file that exists."""
import re
from pathlib import Path

from engine.cli_reference import DOC, current, reference

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def test_the_readme_is_at_most_200_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_docs_cli_md_holds_the_reference_the_parser_makes_now():
    assert current(DOC.read_text()) == reference(), "docs/cli.md is stale: run `python -m engine.cli_reference`"


def test_every_relative_link_in_the_readme_and_docs_leads_to_a_file():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target, _ in LINK.findall(page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert broken == []


def test_docs_claims_md_states_every_claim_as_the_ledger_does_now():
    from engine.claims_reference import DOC as CLAIMS_DOC
    from engine.claims_reference import stale_rows

    assert stale_rows(CLAIMS_DOC.read_text()) == [], "docs/claims.md is stale: run `python -m engine claims --json " \
                                                     "> claims.json; python -m engine.claims_reference claims.json`"
