"""`marginwatch drill`: rehearse the configured defense against simulated markets.

The user's own thresholds, alert rules and actions policy (of one configured account) are
applied to every account of a simulator scenario, and the scenario is played twice with
the same seed: once with actions as configured, once with actions off. The two runs play
at the same time, each against its own venue, so a drill lasts one scenario. The end
states are compared account by account, and a verdict says what the policy changed:
liquidations avoided, what it cost, the equity difference, and why.

Nothing real is touched: the accounts are the simulator's, the state (journal, caches)
lives in a temporary directory, and no notifier runs. The pages counted are those the
user's `alerts` section would have sent: the real alert pipeline runs on the scenario's
simulated clock and delivers into a list (the `marginwatch.drill` entry point of the
`alerts` package; without it, pages are not counted). In `confirm` mode every
confirmation is taken as given.

Equity is the futures margin balance (wallets plus unrealized PnL) plus the reserve left
in the spot and funding wallets: money moved from the reserve into futures is neither a
gain nor a loss.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

import orjson
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from monitor.actions.decision import CLIENT_ID_PREFIX, Decision
from monitor.config import AccountConfig, Config
from monitor.config.schema import AlertsConfig
from monitor.daemon.host import DaemonView
from monitor.daemon.plugins import DaemonState
from monitor.daemon.service import Daemon
from monitor.engine.levels import Level
from monitor.events import Event, EventKind
from monitor.formatting import fraction
from monitor.simulator.binance_usdm.accounting import (
    account_assets,
    asset_summary,
    reserve_balance,
)
from monitor.simulator.binance_usdm.events import LIQUIDATION
from monitor.simulator.binance_usdm.state import SimAccount, SimExchange
from monitor.simulator.dialects import DIALECTS
from monitor.simulator.prices import price_ticks
from monitor.simulator.runner import SimulatedVenue
from monitor.simulator.scenario import Scenario, builtin_names, load_scenario

SHOWN = (
    EventKind.LEVEL,
    EventKind.ACTION,
    EventKind.PROBABLE_LIQUIDATION,
    EventKind.CLOSED_BY_US,
    EventKind.ERROR,
)
SETTLE_SECONDS = 3.0
"""After the last tick: one more read, so an end-of-scenario liquidation or action is
settled and reported."""
DEFAULT_SPEED = 2.0
SUITE_WALL_SECONDS = 60.0
"""Without --speed, the suite plays each scenario at least this fast in wall time (and
never slower than DEFAULT_SPEED), all at once: the suite lasts about a minute."""
FLAP_WINDOW = 60.0
"""Critical, then lower, then critical again within this many simulated seconds is a
flap: the hysteresis failed to hold."""
UNPAGED_DROP = AlertsConfig().group_wait
"""A drop below critical shorter than the alerts' group window is never paged (the
message goes out with the level it ends at): the figures passing through the legs of
one liquidation, milliseconds apart, are not a flap."""
PAGES_GROUP = "marginwatch.drill"
TO_FUTURES = ("_UMFUTURE", "_UNIFIED")
"""Transfer types into the futures wallet end so: Binance's MAIN_UMFUTURE, ..., the
simulated Bybit's FUND_UNIFIED."""
GAP_LOOKBACK = 3.0
"""Simulated seconds before a liquidation searched for the price move that beat the
defense: the contract allows a liquidation in auto only to a gap within one tick."""


class PageCounter(Protocol):
    """What the `marginwatch.drill` entry point builds (alerts/drill.py)."""

    def emit(self, event: Event) -> None: ...

    def start(self) -> None: ...

    async def stop(self, now: float) -> None: ...

    def pages(self, account: str) -> int: ...


PageCounterFactory = Callable[[DaemonState, Callable[[], float]], PageCounter]


@dataclass(frozen=True, slots=True)
class Line:
    at: float
    """Simulated seconds since the scenario started."""
    text: str


@dataclass(frozen=True, slots=True)
class Timed:
    at: float
    """Simulated seconds since the scenario started."""
    event: Event


@dataclass(frozen=True, slots=True)
class Outcome:
    """One account at the end of one run (the `R.accounts[NAME]` of `--json`)."""

    equity: float
    """Futures margin balance plus the reserve left outside futures."""
    liquidated: list[str]
    """Symbols the exchange liquidated (ccxt's unified symbols)."""
    closed_by_us: list[str]
    """Symbols our orders closed in full (and the exchange did not liquidate)."""
    positions: dict[str, float]
    """Open symbol -> signed size."""
    orders: int
    """Our orders (client id `mw-...`)."""
    transfers: int
    """Reserve transfers into futures."""
    transferred: float
    realized_pnl: float
    """Realized PnL of every fill: our orders and the exchange's liquidations."""
    fees: float
    """Trading fees of our orders (a liquidation's clearance fee is in its loss)."""
    pages: int | None
    """Messages the user's alert config would have sent; None when not counted."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Run:
    mode: str
    lines: list[Line] = field(default_factory=list)
    events: list[Timed] = field(default_factory=list)
    accounts: dict[str, Outcome] = field(default_factory=dict)
    liquidations: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)
    """(account, symbol) -> (the venue's market id, simulated seconds) of each liquidation."""

    @property
    def label(self) -> str:
        return "off" if self.mode == "off" else self.mode

    def to_json(self) -> dict[str, Any]:
        return {"accounts": {name: o.to_json() for name, o in self.accounts.items()}}


@dataclass(frozen=True, slots=True)
class Drill:
    """One scenario played with actions and without."""

    scenario: str
    speed: float
    actions: Run
    off: Run
    gaps: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    """(account, symbol) liquidated with actions -> (largest one-tick move, when) of its
    price in the GAP_LOOKBACK seconds before."""

    def to_json(self) -> dict[str, Any]:
        runs = {"off": self.off.to_json(), "actions": self.actions.to_json()}
        return {"scenario": self.scenario, "runs": runs}


# --- configuration ---------------------------------------------------------------------


def policy_source(config: Config, account: str | None) -> AccountConfig:
    """The configured account whose thresholds and actions are rehearsed."""
    return config.account(account) if account else config.accounts[0]


def rehearsed_mode(source: AccountConfig) -> str:
    """The actions mode the drill plays: the account's own, or dry_run when it is off."""
    return "dry_run" if source.actions.mode == "off" else source.actions.mode


def drill_config(
    source: AccountConfig, base: Config, venue: SimulatedVenue, state: Path, mode: str
) -> Config:
    """`source`'s thresholds and actions (mode replaced) and the user's alert rules on
    every simulated account; no notifier."""
    actions = source.actions.model_dump(by_alias=True)
    actions["mode"] = mode
    accounts = [
        {"name": name, "exchange": venue.dialect.exchange_id, "api_key": c.api_key,
         "secret": c.secret,
         "rest_url": venue.base_url, "ws_url": venue.ws_url}
        for name, c in venue.credentials.items()
    ]  # fmt: skip
    return Config.model_validate(
        {
            "state_dir": str(state),
            "daemon": base.daemon,
            "alerts": base.alerts,
            "thresholds": source.thresholds.model_dump(),
            "actions": actions,
            "accounts": accounts,
        }
    )


def with_reserve(scenario: Scenario, amount: float, asset: str = "USDT") -> Scenario:
    """`scenario` with every account's reserve set to `amount` of `asset`."""
    document = scenario.model_dump()
    for account in document["accounts"]:
        account["reserve"] = {asset: amount}
    return Scenario.model_validate(document)


def suite_speed(
    scenario: Scenario, speed: float | None, wall_seconds: float = SUITE_WALL_SECONDS
) -> float:
    """The speed a suite plays `scenario` at: `speed` when given, else fast enough to
    last `wall_seconds`, and never slower than DEFAULT_SPEED."""
    if speed is not None:
        return speed
    return max(DEFAULT_SPEED, scenario.duration / wall_seconds)


def _page_counter_factory() -> PageCounterFactory | None:
    found = sorted(entry_points(group=PAGES_GROUP), key=lambda e: e.name)
    return found[0].load() if found else None


# --- playing ---------------------------------------------------------------------------


async def _always(decisions: Sequence[Decision]) -> bool:
    return True


async def play(
    scenario: Scenario,
    speed: float,
    *,
    source: AccountConfig,
    base: Config,
    mode: str,
    venue_name: str = "binance",
) -> Run:
    """One pass of the scenario with actions in `mode` on the simulated `venue_name`
    (a `--venue` dialect): events, timeline and end state."""
    run = Run(mode)
    factory = _page_counter_factory()
    with tempfile.TemporaryDirectory(prefix="marginwatch-drill-") as state:
        async with SimulatedVenue(scenario, speed=speed, venue=venue_name) as venue:
            started = time.time()

            def simulated(at: float | None = None) -> float:
                """Wall time -> seconds into the scenario, on its own clock."""
                return ((time.time() if at is None else at) - started) * speed

            def emit(event: Event) -> None:
                run.events.append(Timed(simulated(event.time), event))

            config = drill_config(source, base, venue, Path(state), mode)
            daemon = Daemon(config, emit, confirmer=_always)
            view = DaemonView(lambda: daemon, lambda: config)
            counter = factory(view, simulated) if factory else None
            if counter is not None:
                daemon.bus.subscribe(Event, counter.emit)
                counter.start()
            await daemon.start()
            try:
                await venue.finished.wait()
                await asyncio.sleep(SETTLE_SECONDS)
            finally:
                await daemon.stop()
                if counter is not None:
                    # a group still gathering at the end is sent when its wait ends
                    await counter.stop(simulated() + config.alerts.group_wait)
            for name, credentials in venue.credentials.items():
                account = venue.exchange.accounts[credentials.api_key]
                for order in account.orders:
                    if order.type == LIQUIDATION:
                        symbol = unified_symbol(venue.exchange, order.symbol)
                        at = simulated(order.time_ms / 1000)
                        run.liquidations[(name, symbol)] = (order.symbol, at)
                        text = f"{name}: LIQUIDATED {symbol} {order.orig_qty:g}"
                        run.lines.append(Line(at, text))
                pages = counter.pages(name) if counter is not None else None
                run.accounts[name] = outcome(venue.exchange, account, pages)
    for timed in run.events:
        event = timed.event
        if event.kind in SHOWN:
            run.lines.append(Line(timed.at, f"{event.account}: {event.target}: {_describe(event)}"))
    run.lines.sort(key=lambda line: line.at)
    return run


async def rehearse(
    name: str,
    scenario: Scenario,
    speed: float,
    *,
    source: AccountConfig,
    base: Config,
    venue_name: str = "binance",
) -> Drill:
    """Both passes of one scenario, played at the same time on their own venues."""
    mode = rehearsed_mode(source)
    actions, off = await asyncio.gather(
        play(scenario, speed, source=source, base=base, mode=mode, venue_name=venue_name),
        play(scenario, speed, source=source, base=base, mode="off", venue_name=venue_name),
    )
    gaps = {
        key: move
        for key, (market_id, at) in actions.liquidations.items()
        if (move := largest_move(scenario, market_id, at)) is not None
    }
    return Drill(name, speed, actions, off, gaps)


def largest_move(scenario: Scenario, market_id: str, at: float) -> tuple[float, float] | None:
    """(fractional move, when) of the largest one-tick move of `market_id`'s price in the
    GAP_LOOKBACK simulated seconds up to `at` (the scenario's own path)."""
    previous, best = scenario.symbols[market_id].start, None
    for tick in price_ticks(scenario):
        if tick.time > at + scenario.tick_seconds:
            break
        price = tick.marks[market_id]
        move = price / previous - 1
        if tick.time >= at - GAP_LOOKBACK and (best is None or abs(move) > abs(best[0])):
            best = (move, tick.time)
        previous = price
    return best


async def rehearse_suite(
    scenarios: Iterable[tuple[str, Scenario]],
    speed: float | None,
    source: AccountConfig,
    base: Config,
    *,
    wall_seconds: float = SUITE_WALL_SECONDS,
    venue_name: str = "binance",
) -> list[Drill]:
    """Every scenario at once (see `suite_speed`), in the order given."""
    plays = (
        rehearse(
            name,
            scenario,
            suite_speed(scenario, speed, wall_seconds),
            source=source,
            base=base,
            venue_name=venue_name,
        )
        for name, scenario in scenarios
    )
    return list(await asyncio.gather(*plays))


def builtin_scenarios() -> list[tuple[str, Scenario]]:
    return [(name, load_scenario(name)) for name in builtin_names()]


def _describe(event: Event) -> str:
    if event.kind is EventKind.LEVEL:
        ratio = f" (ratio {fraction(event.margin_ratio)})" if event.margin_ratio is not None else ""
        return f"{event.previous_level or '-'} -> {event.level}{ratio}"
    return f"[{event.kind.value} {event.level or ''}] {event.message}"


# --- end state -------------------------------------------------------------------------


def unified_symbol(exchange: SimExchange, market_id: str) -> str:
    """ccxt's symbol of a USD-M perpetual: AVAXUSDT -> AVAX/USDT:USDT."""
    market = exchange.market(market_id)
    return f"{market.base}/{market.quote}:{market.margin_asset}"


def outcome(exchange: SimExchange, account: SimAccount, pages: int | None) -> Outcome:
    """What the account holds and did, from the venue's own books."""
    futures = sum(
        asset_summary(exchange, account, a).margin_balance
        for a in account_assets(exchange, account)
    )
    reserve = sum(reserve_balance(account, a) for a in {*account.spot, *account.funding})
    ours = [o for o in account.orders if o.client_order_id.startswith(CLIENT_ID_PREFIX)]
    liquidated = {o.symbol for o in account.orders if o.type == LIQUIDATION}
    held: dict[str, float] = {}
    for position in account.open_positions():
        symbol = unified_symbol(exchange, position.symbol)
        held[symbol] = held.get(symbol, 0.0) + position.amount
    open_ids = {p.symbol for p in account.open_positions()}
    closed = {o.symbol for o in ours} - open_ids - liquidated
    transfers = [t for t in account.transfers if t.type.endswith(TO_FUTURES)]
    return Outcome(
        equity=futures + reserve,
        liquidated=sorted(unified_symbol(exchange, s) for s in liquidated),
        closed_by_us=sorted(unified_symbol(exchange, s) for s in closed),
        positions=dict(sorted(held.items())),
        orders=len(ours),
        transfers=len(transfers),
        transferred=sum(t.amount for t in transfers),
        realized_pnl=sum(o.realized_pnl for o in account.orders),
        fees=sum(o.commission for o in ours),
        pages=pages,
    )


def flaps(
    run: Run, window: float = FLAP_WINDOW, unpaged: float = UNPAGED_DROP
) -> list[tuple[str, str, float, float]]:
    """(account, target, first critical, critical again) for every target that paged
    critical, dropped below it for longer than `unpaged`, and came back within `window`
    simulated seconds."""
    found = []
    left: dict[tuple[str, str], float] = {}
    last: dict[tuple[str, str], Level | None] = {}
    for timed in run.events:
        event = timed.event
        if event.kind is not EventKind.LEVEL or event.account is None:
            continue
        key = (event.account, event.target)
        before, now = last.get(key), event.level
        last[key] = now
        if _alarming(before) and not _alarming(now):
            left[key] = timed.at
        elif (
            _alarming(now)
            and not _alarming(before)
            and key in left
            and unpaged < timed.at - left[key] <= window
        ):
            found.append((key[0], key[1], left[key], timed.at))
    return found


def _alarming(level: Level | None) -> bool:
    return level is not None and level >= Level.CRITICAL


# --- text ------------------------------------------------------------------------------


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _signed(value: float) -> str:
    return f"{value:+,.2f}"


def _names(symbols: Iterable[str]) -> str:
    return ", ".join(symbols) or "none"


def verdict(drill: Drill) -> list[tuple[str, str]]:
    """Per account: liquidations avoided, what it cost, the equity difference, and why,
    as (heading, text) lines."""
    lines = []
    mode = drill.actions.label
    for name, acted in drill.actions.accounts.items():
        alone = drill.off.accounts[name]
        off_liq, act_liq = set(alone.liquidated), set(acted.liquidated)
        avoided = sorted(off_liq - act_liq)
        difference = acted.equity - alone.equity
        lines.append((name, f"{mode} avoided {len(avoided)} of {len(off_liq)} liquidation(s)"))
        lines.append(
            ("equity", f"{_money(acted.equity)} vs {_money(alone.equity)} off "
                       f"({_signed(difference)})")
        )  # fmt: skip
        pages = ""
        if acted.pages is not None and alone.pages is not None:
            pages = f"; pages {acted.pages} vs {alone.pages} off"
        lines.append(
            ("cost", f"{acted.orders} order(s), fees {_money(acted.fees)}, "
                     f"{acted.transfers} reserve transfer(s) of {_money(acted.transferred)}"
                     + pages)
        )  # fmt: skip
        gaps = {symbol: gap for (account, symbol), gap in drill.gaps.items() if account == name}
        lines.extend(("why", reason) for reason in _reasons(acted, alone, gaps))
    for run in (drill.actions, drill.off):
        for account, target, left, back in flaps(run):
            lines.append(
                (f"flap ({run.label})",
                 f"{account} {target} left critical at {left:.0f} s, back at {back:.0f} s")
            )  # fmt: skip
    return lines


def _reasons(acted: Outcome, alone: Outcome, gaps: dict[str, tuple[float, float]]) -> list[str]:
    reasons = []
    for symbol in sorted(set(alone.liquidated) - set(acted.liquidated)):
        if symbol in acted.closed_by_us:
            reasons.append(
                f"{symbol} liquidated when left alone; closed by marginwatch first, keeping "
                "the liquidation fee and what margin was left"
            )
        elif symbol in acted.positions:
            reasons.append(f"{symbol} liquidated when left alone; defended, still open")
    for symbol in sorted(set(acted.liquidated) & set(alone.liquidated)):
        reasons.append(
            f"{symbol} liquidated in both runs: the defense did not save it" + _gap(gaps, symbol)
        )
    for symbol in sorted(set(acted.liquidated) - set(alone.liquidated)):
        reasons.append(
            f"{symbol} liquidated only with actions: the defense made it worse" + _gap(gaps, symbol)
        )
    for symbol in acted.closed_by_us:
        if symbol in alone.positions:
            reasons.append(f"{symbol} closed by marginwatch although it survived without action")
    for symbol, size in acted.positions.items():
        before = alone.positions.get(symbol)
        if before is not None and abs(size) < abs(before):
            reasons.append(f"{symbol} reduced to {size:g} (left alone: {before:g})")
    realized = acted.realized_pnl - alone.realized_pnl
    if acted.orders or acted.transfers or abs(realized) >= 0.005:
        reasons.append(
            f"realized PnL {_money(acted.realized_pnl)} vs {_money(alone.realized_pnl)} off; "
            f"the rest of the difference is the open positions' value"
        )
    if not reasons:
        reasons.append("nothing differed: the policy never acted")
    return reasons


def _gap(gaps: dict[str, tuple[float, float]], symbol: str) -> str:
    if symbol not in gaps:
        return ""
    move, at = gaps[symbol]
    return f" (largest one-tick move before it: {move * 100:+.2f} % at {at:.0f} s)"


def render(drill: Drill, console: Console) -> None:
    """Timeline, end states and verdict of one drill, readable at 80 columns."""
    runs = (drill.actions, drill.off)
    timeline = Table(title="timeline (simulated seconds)", expand=True)
    timeline.add_column("t", justify="right", no_wrap=True)
    timeline.add_column("run", no_wrap=True)
    timeline.add_column("event", ratio=1)
    merged = sorted(
        ((line.at, i, line.text) for i, run in enumerate(runs) for line in run.lines),
        key=lambda item: (item[0], item[1]),
    )
    for at, index, text in merged:
        # plain text: messages hold brackets, not markup
        timeline.add_row(f"{at:.1f}", runs[index].label, Text(text))
    console.print(timeline)
    end = Table(title="end state", expand=True)
    end.add_column("account", no_wrap=True)
    for run in runs:
        end.add_column(run.label, ratio=1)
    for name in drill.actions.accounts:
        cells = [_end_cell(run.accounts[name]) for run in runs]
        end.add_row(Text(name), *cells)
    console.print(end)
    lines = Table.grid(padding=(0, 1))
    lines.add_column(no_wrap=True, style="bold")
    lines.add_column()
    for heading, text in verdict(drill):
        lines.add_row(heading, Text(text))
    console.print(Text("verdict", style="bold"), lines)


def _end_cell(state: Outcome) -> Text:
    positions = ", ".join(f"{s} {size:+g}" for s, size in state.positions.items())
    pages = "not counted" if state.pages is None else str(state.pages)
    return Text(
        f"equity {_money(state.equity)}\n"
        f"open: {positions or 'none'}\n"
        f"liquidated: {_names(state.liquidated)}\n"
        f"closed by us: {_names(state.closed_by_us)}\n"
        f"our orders: {state.orders}\n"
        f"transfers: {state.transfers} ({_money(state.transferred)})\n"
        f"pages: {pages}"
    )


def suite_table(drills: Sequence[Drill]) -> Table:
    """Scenario x off/actions: liquidations, equity, orders and reserve transfers
    (every account summed)."""
    table = Table(title="drill suite (moves: reserve transfers)")
    table.add_column("scenario", no_wrap=True)
    for column in ("liq.\noff", "liq.\nauto", "equity\noff", "equity\nauto", "orders", "moves"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in suite_rows(drills):
        table.add_row(*row)
    return table


def suite_rows(drills: Sequence[Drill]) -> list[tuple[str, ...]]:
    rows = []
    for drill in drills:
        off, acted = drill.off.accounts.values(), drill.actions.accounts.values()
        rows.append(
            (
                drill.scenario,
                str(sum(len(o.liquidated) for o in off)),
                str(sum(len(o.liquidated) for o in acted)),
                _money(sum(o.equity for o in off)),
                _money(sum(o.equity for o in acted)),
                str(sum(o.orders for o in acted)),
                str(sum(o.transfers for o in acted)),
            )
        )
    return rows


def suite_markdown(drills: Sequence[Drill], heading: str) -> str:
    """The suite's table as Markdown, ready to paste into the README."""
    header = ("scenario", "liquidations off", "liquidations auto", "equity off",
              "equity auto", "orders auto", "transfers auto")  # fmt: skip
    lines = [heading, "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join(["---", *["---:"] * (len(header) - 1)]) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in suite_rows(drills)]
    return "\n".join(lines)


# --- the command -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """What `marginwatch drill` was asked for."""

    scenarios: list[tuple[str, Scenario]]
    speed: float | None
    account: str | None = None
    suite: bool = False
    output: str = "text"
    """text, json or markdown."""
    reserve: float | None = None
    venue: str = "binance"
    """The simulated exchange's dialect (`--venue`)."""


async def drill(config: Config, request: Request, console: Console | None = None) -> int:
    """Play each requested scenario with actions as configured and off; print. Exit 0."""
    console = console or Console()
    source = policy_source(config, request.account)
    scenarios = request.scenarios
    if request.reserve is not None:
        scenarios = [(n, with_reserve(s, request.reserve)) for n, s in scenarios]
    if request.output == "text":
        if source.actions.mode == "off":
            console.print(f"[yellow]actions are off for {source.name!r}: rehearsing dry_run[/]")
        name, first = scenarios[0]
        what = f"{name} ({first.description})" if first.description else name
        what = "every built-in scenario" if request.suite else what
        console.print(
            f"[bold]marginwatch drill[/]: policy of {source.name!r} "
            f"({rehearsed_mode(source)}) against {what} on a simulated "
            f"{DIALECTS[request.venue].label}, and with actions off"
        )
    started = time.monotonic()
    if request.suite:
        drills = await rehearse_suite(
            scenarios, request.speed, source, config, venue_name=request.venue
        )
    else:
        (name, scenario), speed = scenarios[0], request.speed or DEFAULT_SPEED
        drills = [
            await rehearse(
                name, scenario, speed, source=source, base=config, venue_name=request.venue
            )
        ]
    report(drills, request, source=source, console=console, took=time.monotonic() - started)
    return 0


def report(
    drills: list[Drill], request: Request, *, source: AccountConfig, console: Console, took: float
) -> None:
    """Print the drills as `request.output` asks: JSON, Markdown or text."""
    if request.output == "json":
        document: Any = [d.to_json() for d in drills] if request.suite else drills[0].to_json()
        console.out(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode(), highlight=False)
        return
    if request.output == "markdown":
        if request.reserve is None:
            reserve = "the scenarios' own reserves"
        else:
            reserve = f"a {request.reserve:,.0f} USDT reserve" if request.reserve else "no reserve"
        heading = f"Policy of {source.name!r} ({rehearsed_mode(source)}), {reserve}:"
        console.out(suite_markdown(drills, heading), highlight=False)
        return
    for one in drills:
        if request.suite:
            console.rule(f"{one.scenario} at {one.speed:g}x")
        else:
            console.print(f"{one.scenario} at {one.speed:g}x")
        render(one, console)
    if request.suite:
        console.print(Group(suite_table(drills), Text(f"played in {took:.0f} s")))
