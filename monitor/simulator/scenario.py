"""Scenario files: a seeded market path and the account book it is played against.

A scenario is YAML, validated here so that a typo fails at load time with its place
(`segments[1].jumps[0].at (flash-crash.yaml:14): ...`) instead of as a silent flat market.

    seed: 7
    tick_seconds: 1              # simulated seconds per price update
    funding_interval: 8h         # funding settles every interval (simulated time)
    symbols:
      BTCUSDT: {start: 65000, funding_rate: 0.0001}
      SOLUSDT: {start: 150, segments: [...]}   # own segments replace the shared ones
    segments:                    # shared by every symbol without its own
      - duration: 30s
        drift: -0.3              # fractional move over the whole segment (-30 %)
        volatility: 0.02         # std. deviation of the log move over the whole segment
        jumps: [{at: 10s, size: -0.12}]   # `at` from the segment's start
        funding_rate: 0.0005     # optional: the rate while this segment runs
    accounts:
      - name: hybrid
        position_mode: one-way   # or hedge
        balances: {USDT: 20000}  # cross wallet, isolated margins excluded
        reserve: {USDT: 5000}    # spot wallet, outside futures (optional)
        reserve_wallet: spot     # or funding
        can_transfer: true       # the key may move the reserve in (default true)
        positions:
          - {symbol: BTCUSDT, side: long, size: 0.5, leverage: 10}
          - {symbol: AVAXUSDT, side: long, size: 200, margin_mode: isolated,
             leverage: 10, isolated_margin: 500}

Durations are seconds, or strings with a unit: 500ms, 30s, 5m, 8h, 1d.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from monitor.config.document import Document, format_path, parse_document
from monitor.simulator.binance_usdm.fixtures import usdm_markets

MARKETS = usdm_markets(extended=True)
"""The markets a scenario may trade: the simulator's Binance USD-M fixtures."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _seconds(value: Any) -> Any:
    """Durations such as "30s", "8h" or 45 → seconds; pydantic rejects anything else."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise PydanticCustomError(
                "duration", "must be a duration such as 30s, 5m, 8h or a number of seconds"
            )
        return float(match[1]) * _UNIT_SECONDS[match[2] or "s"]
    return value


Duration = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]
"""Seconds of simulated time."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Jump(_Spec):
    at: Duration
    size: float = Field(gt=-1)
    """Fractional move applied at once: -0.12 is a 12 % drop."""


class Segment(_Spec):
    duration: Duration
    drift: float = Field(0.0, gt=-1)
    volatility: float = Field(0.0, ge=0)
    jumps: tuple[Jump, ...] = ()
    funding_rate: float | None = None


class SymbolSpec(_Spec):
    start: float = Field(gt=0)
    funding_rate: float = 0.0001
    segments: tuple[Segment, ...] | None = None


class PositionSpec(_Spec):
    symbol: str
    side: Literal["long", "short"]
    size: float = Field(gt=0)
    entry: float | None = Field(None, gt=0)
    """Entry price; defaults to the symbol's start price."""
    margin_mode: Literal["cross", "isolated"] = "cross"
    leverage: int = Field(10, ge=1, le=125)
    isolated_margin: float | None = Field(None, gt=0)
    """Isolated wallet; defaults to the entry notional / leverage."""

    @model_validator(mode="after")
    def _margin_only_isolated(self) -> Self:
        if self.isolated_margin is not None and self.margin_mode != "isolated":
            raise PydanticCustomError(
                "isolated_margin", "isolated_margin is only for margin_mode: isolated"
            )
        return self


class AccountSpec(_Spec):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    api_key: str | None = Field(None, min_length=1)
    secret: str | None = Field(None, min_length=1)
    position_mode: Literal["one-way", "hedge"] = "one-way"
    balances: dict[str, Annotated[float, Field(ge=0)]]
    positions: tuple[PositionSpec, ...] = ()
    reserve: dict[str, Annotated[float, Field(ge=0)]] = {}
    """Money outside futures (asset -> amount) that a defense may transfer in."""
    reserve_wallet: Literal["spot", "funding"] = "spot"
    """Which wallet holds the reserve."""
    can_transfer: bool = True
    """Whether the account's key may make universal transfers (never withdrawals)."""

    @property
    def credentials(self) -> tuple[str, str]:
        """(api key, secret): given ones, else derived from the name (test credentials)."""
        return (
            self.api_key or f"sim-{self.name}-api-key",
            self.secret or f"sim-{self.name}-secret",
        )

    @model_validator(mode="after")
    def _one_leg_per_side(self) -> Self:
        seen: set[tuple[str, str]] = set()
        for position in self.positions:
            key = (position.symbol, position.side if self.position_mode == "hedge" else "")
            if key in seen:
                raise PydanticCustomError(
                    "duplicate_position",
                    "{symbol} appears twice; one-way mode holds one position per symbol, "
                    "hedge mode one per side",
                    {"symbol": position.symbol},
                )
            seen.add(key)
        return self


class Scenario(_Spec):
    description: str = ""
    seed: int
    tick_seconds: Duration = 1.0
    funding_interval: Duration = 8 * 3600.0
    symbols: dict[str, SymbolSpec]
    segments: tuple[Segment, ...] = ()
    accounts: tuple[AccountSpec, ...]

    def segments_for(self, symbol: str) -> tuple[Segment, ...]:
        own = self.symbols[symbol].segments
        return self.segments if own is None else own

    @property
    def duration(self) -> float:
        """Simulated seconds until the longest symbol path ends."""
        paths = [sum(s.duration for s in self.segments_for(symbol)) for symbol in self.symbols]
        return max(paths, default=0.0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        issues = list(self._issues())
        if issues:
            raise ValidationError.from_exception_data(self.__class__.__name__, issues)
        return self

    def _issues(self) -> Iterator[InitErrorDetails]:
        """Cross-field problems, each at its own path."""
        if not self.symbols:
            yield _issue(("symbols",), "list at least one symbol")
        if not self.accounts:
            yield _issue(("accounts",), "describe at least one account")
        for symbol in self.symbols:
            if symbol not in MARKETS:
                yield _issue(
                    ("symbols", symbol),
                    f"unknown symbol; the simulator trades {', '.join(MARKETS)}",
                )
        lists = [(("segments",), self.segments)] + [
            (("symbols", symbol, "segments"), spec.segments)
            for symbol, spec in self.symbols.items()
            if spec.segments is not None
        ]
        for where, segments in lists:
            for i, segment in enumerate(segments):
                for j, jump in enumerate(segment.jumps):
                    if jump.at > segment.duration:
                        yield _issue(
                            (*where, i, "jumps", j, "at"),
                            f"after the segment's end ({segment.duration:g}s)",
                        )
        if self.symbols and self.duration <= 0:
            yield _issue(("segments",), "no symbol has a segment: the scenario would not run")
        keys: dict[str, int] = {}
        for a, account in enumerate(self.accounts):
            key = account.credentials[0]
            if key in keys:
                yield _issue(("accounts", a), f"same API key as accounts[{keys[key]}]")
            keys.setdefault(key, a)
            for p, position in enumerate(account.positions):
                where = ("accounts", a, "positions", p)
                market = MARKETS.get(position.symbol)
                if position.symbol not in self.symbols:
                    yield _issue((*where, "symbol"), "not listed under symbols")
                elif market is not None and position.leverage > market.brackets[0].max_leverage:
                    limit = market.brackets[0].max_leverage
                    yield _issue((*where, "leverage"), f"{position.symbol} allows at most {limit}x")


def _issue(loc: tuple[str | int, ...], message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("scenario", message), loc=loc, input=None)


class ScenarioError(Exception):
    """Every problem of one scenario file, one line each, with its path and line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def builtin_names() -> list[str]:
    """Names of the scenarios shipped with the package (`scenarios/*.yaml`)."""
    folder = resources.files(__package__).joinpath("scenarios")
    return sorted(
        e.name.removesuffix(".yaml") for e in folder.iterdir() if e.name.endswith(".yaml")
    )


def _is_path(source: str) -> bool:
    return "/" in source or "\\" in source or source.endswith((".yaml", ".yml"))


def load_scenario(source: str | Path) -> Scenario:
    """A built-in scenario by name (`flash-crash`) or a YAML file by path."""
    if isinstance(source, Path) or _is_path(source):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError([f"{path}: cannot read: {exc.strerror}"]) from None
        return parse_scenario(text, path.name)
    names = builtin_names()
    if source not in names:
        raise ScenarioError(
            [f"unknown scenario {source!r}; built-in: {', '.join(names)}; or a path to a YAML file"]
        )
    text = resources.files(__package__).joinpath("scenarios", f"{source}.yaml").read_text("utf-8")
    return parse_scenario(text, f"{source}.yaml")


def parse_scenario(text: str, origin: str = "<scenario>") -> Scenario:
    """Validate scenario YAML; ScenarioError lists every problem as `path (origin:line): msg`."""
    try:
        document = parse_document(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{origin}:{mark.line + 1}" if mark else origin
        reason = getattr(exc, "problem", None) or "syntax error"
        raise ScenarioError([f"{where}: invalid YAML: {reason}"]) from None
    if not isinstance(document.data, dict):
        raise ScenarioError([f"{origin}: a scenario is a mapping (seed, symbols, segments, ...)"])
    try:
        return Scenario.model_validate(document.data)
    except ValidationError as exc:
        raise ScenarioError(
            [_describe(error, document, origin) for error in exc.errors()]
        ) from None


def _describe(error: Any, document: Document, origin: str) -> str:
    loc = tuple(error["loc"])
    line = document.line_of(loc)
    where = f"{origin}:{line}" if line else origin
    message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
    message = message.replace("Input should be ", "must be ", 1)
    path = format_path(loc) or "(top level)"
    return f"{path} ({where}): {message}"
