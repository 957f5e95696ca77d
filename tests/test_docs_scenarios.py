"""docs/scenarios.md describes the scenario format completely, and its example is valid."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from monitor.simulator.scenario import (
    MARKETS,
    AccountSpec,
    Jump,
    PositionSpec,
    Scenario,
    Segment,
    SymbolSpec,
    parse_scenario,
)

DOC = (Path(__file__).resolve().parents[1] / "docs" / "scenarios.md").read_text(encoding="utf-8")
README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_the_example_is_a_valid_scenario() -> None:
    example = re.search(r"```yaml\n(.*?)```", DOC, re.S)
    assert example is not None
    scenario = parse_scenario(example.group(1), "docs/scenarios.md")
    assert scenario.accounts[0].reserve == {"USDT": 3000}


def test_every_key_of_the_format_is_described() -> None:
    """A key added to the format without a line in the doc's tables fails here."""
    models: list[type[BaseModel]] = [Scenario, SymbolSpec, Segment, AccountSpec, PositionSpec]
    described = set(re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)? \|", DOC, re.M))
    keys = {key for pair in described for key in pair if key}
    missing = [f"{m.__name__}.{f}" for m in models for f in m.model_fields if f not in keys]
    assert missing == []
    assert all(f"`{field}`" in DOC for field in Jump.model_fields)


def test_every_simulated_market_is_listed() -> None:
    assert [s for s in MARKETS if f"| `{s}` |" not in DOC] == []


def test_the_readme_links_it() -> None:
    assert "(docs/scenarios.md)" in README
