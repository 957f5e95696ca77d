"""The scenarios shipped with the package, by name: cheap to list (no pydantic, no YAML),
so that `marginwatch --help` can name them without loading the simulator."""

from __future__ import annotations

from importlib import resources


def builtin_names() -> list[str]:
    """Names of the scenarios shipped with the package (`scenarios/*.yaml`)."""
    folder = resources.files(__package__).joinpath("scenarios")
    return sorted(
        e.name.removesuffix(".yaml") for e in folder.iterdir() if e.name.endswith(".yaml")
    )


VENUES = ("binance", "bybit")
"""The exchange dialects the simulator speaks (`--venue`); the first is the default.
Kept here, beside the scenario names, so the CLI's parser needs no simulator import."""
