"""The venues marginwatch knows, and what each one can do: the one table keyed by ccxt id.

Everything that depends on which exchange an account is on is looked up here: the adapter
that reads it, its mark-price feed, its user stream, the request limit its reads are
budgeted under, whether its margin model is exact, and what a defense may do on it.

**Adding a venue** is one folder and one entry:
1. `monitor/venues/<venue>/` with what talks to the exchange (`adapter.py`, `feed.py`, and
   where it has them `userstream.py`, `executor.py` with its transfers, `permissions.py`);
2. one `Venue(...)` in `VENUES` below, naming those pieces and the capabilities. An exact
   model also needs its class in `monitor/engine/models` under the same ccxt id: this
   module refuses to import otherwise (`check_models`), so a venue declared exact can
   never be priced by the generic model unnoticed.
The README's exchange table and `marginwatch venues` are printed from these entries
(monitor/venues/table.py), and the configuration is checked against them at load
(`lacks`): an account asking for what its venue cannot do is refused there, by key and
line, not discovered mid-crash.

Why the engine keeps its own model table rather than receiving the model from here: the
engine is pure and imports only the domain, and every book is built from a snapshot
alone (status, stress, the simulator's drill, the tests). A model is the exchange's
published rulebook, not a way of talking to it, so it stays with the engine, and this
registry declares which ids are exact and proves at import that the two tables agree.

An id without an entry (any other ccxt exchange) gets `OTHER`: ccxt's unified fields,
the generic model, polled marks, dry runs only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from monitor.actions.controller import LIVE
from monitor.actions.executor import VenueExecution
from monitor.config import AccountConfig
from monitor.engine.models import EXACT_MODELS
from monitor.exchange.adapters.base import ExchangeAdapter
from monitor.exchange.budget import RequestLimit
from monitor.feeds.base import MarkFeed, StatusCallback
from monitor.venues.binance import permissions as binance_permissions
from monitor.venues.binance.adapter import REQUEST_WEIGHT, BinanceCoinMAdapter, BinanceUsdMAdapter
from monitor.venues.binance.executor import BinanceCoinmExecutor, BinanceUsdmExecutor
from monitor.venues.binance.feed import BinanceCoinmMarkFeed, BinanceUsdmMarkFeed
from monitor.venues.binance.userstream import BinanceUserStream, StreamedAccount, open_user_stream
from monitor.venues.bybit import permissions as bybit_permissions
from monitor.venues.bybit.adapter import REQUEST_ALLOWANCE, BybitAdapter
from monitor.venues.bybit.executor import BybitExecutor
from monitor.venues.bybit.feed import bybit_feed
from monitor.venues.generic.adapter import BingxAdapter, MexcAdapter, WeexAdapter
from monitor.venues.generic.feed import PollingMarkFeed, WatchMarkFeed
from monitor.venues.hyperliquid import permissions as hyperliquid_permissions
from monitor.venues.hyperliquid.adapter import HyperliquidAdapter
from monitor.venues.hyperliquid.executor import HyperliquidExecutor
from monitor.venues.hyperliquid.feed import HyperliquidMarkFeed
from monitor.venues.okx import permissions as okx_permissions
from monitor.venues.okx.adapter import OkxAdapter
from monitor.venues.okx.executor import OkxExecutor
from monitor.venues.okx.feed import OkxMarkFeed

FeedFactory = Callable[..., MarkFeed]
"""Takes MarkFeed's arguments (exchange_id, symbols, on_ticks, on_status, ws_origin,
stale_after, ...) as keywords."""
UserStreamFactory = Callable[
    [StreamedAccount, str | None, StatusCallback | None], BinanceUserStream | None
]
"""(account, ws_origin, on_status) -> the account's stream, or None when it cannot have
one (no API key). Binance USD-M's is the only one; a second venue's should share its
surface (`current`, `syncing`, `read`, `request_refresh`), which the daemon's REST
cadence relies on."""


class About(NamedTuple):
    """What the README's exchange table says of a venue beyond its capabilities."""

    margin_modes: str
    model: str
    """After "exact" or "generic": the rules the model follows, or its limits."""
    checked: str
    """The evidence that the figures are the exchange's."""


@dataclass(frozen=True, slots=True)
class Venue:
    ccxt_id: str
    name: str
    adapter: type[ExchangeAdapter]
    about: About
    exact: bool = False
    """Priced by an exact model (monitor/engine/models, same id); else the generic one."""
    feed: FeedFactory | None = None
    """A dedicated mark-price stream; None: marks through ccxt (polled, or ccxt.pro)."""
    user_stream: UserStreamFactory | None = None
    """Pushes the account's changes (else the account is polled only)."""
    request_limit: RequestLimit | None = None
    """What the venue counts reads against, shared by the accounts of one host."""
    execution: VenueExecution | None = None
    """`actions.mode` confirm/auto: the executor (reduce-only orders, margin added) and
    the key-permission reader the composer hands to the account's controller; None: dry
    runs only. Reading a key's permissions alone does not make a venue safe to act on."""
    transfers: bool = False
    """`actions.reserve`: the executor moves money from the account's own wallets (spot,
    funding) into futures."""


_UNIFIED_TIERS = About(
    "cross and isolated",
    " (tiers at face value, no deduction: errs toward danger)",
    "hand derivations, e2e status against its dialect; marked `model: generic`",
)
"""What the README says of a generic venue priced from ccxt's unified tiers (BingX, MEXC)."""

# The capabilities a defense needs (`execution`, `transfers`) are the last two keywords of
# each entry: set them there when a venue's executor lands (monitor/venues/<v>/executor.py).
VENUES: tuple[Venue, ...] = (
    Venue(
        "binanceusdm", "Binance USD-M", BinanceUsdMAdapter,
        About(
            "cross, isolated, hybrid; one-way and hedge; Multi-Assets",
            " (Binance FAQ formulas)",
            "Binance's published worked example to the cent (cross and isolated); hedge "
            "formula by hand; property tests; e2e status and daemon against the simulator",
        ),
        exact=True, feed=BinanceUsdmMarkFeed, user_stream=open_user_stream,
        request_limit=REQUEST_WEIGHT,
        execution=VenueExecution(BinanceUsdmExecutor, binance_permissions.read_permissions),
        transfers=True,
    ),
    Venue(
        "binancecoinm", "Binance COIN-M", BinanceCoinMAdapter,
        About(
            "cross, isolated (inverse, brackets by contracts)", "",
            "FAQ formula by hand, long and short",
        ),
        exact=True, feed=BinanceCoinmMarkFeed, request_limit=REQUEST_WEIGHT,
        execution=VenueExecution(BinanceCoinmExecutor, binance_permissions.read_permissions),
        transfers=True,
    ),
    Venue(
        "bybit", "Bybit v5", BybitAdapter,
        About(
            "unified cross (USD pool) and isolated, linear and inverse",
            " (fee to close in IM/MM)",
            "hand derivations, property tests, e2e status against a Bybit-dialect server. "
            "Isolated MM is priced at the mark (Bybit's rule since Sep 2025); the older "
            "entry-priced rule is available and reproduces Bybit's published examples",
        ),
        exact=True, feed=bybit_feed, request_limit=REQUEST_ALLOWANCE,
        execution=VenueExecution(BybitExecutor, bybit_permissions.read_permissions),
        transfers=True,
    ),
    Venue(
        "okx", "OKX", OkxAdapter,
        About(
            "isolated and cross, linear and inverse; single-currency and multi-currency "
            "accounts",
            ": `maintenance_margin` is OKX's own (its `mmr`), the liquidation fees it keeps "
            "apart are `liquidation_fees`, shown beside it by `status` and alerts; our "
            "ratio counts both, (MM + fees) / equity, so `mgnRatio` converts to it exactly",
            "hand derivations, conversion test, property tests, e2e status against an "
            "OKX-dialect server",
        ),
        exact=True, feed=OkxMarkFeed,
        execution=VenueExecution(OkxExecutor, okx_permissions.read_permissions),
        transfers=True,
    ),
    Venue(
        "hyperliquid", "Hyperliquid", HyperliquidAdapter,
        About(
            "cross and isolated; read-only by `wallet_address`",
            " (margin tables, MM rate 1/(2 × max leverage))",
            "Hyperliquid's published liquidation formula and examples, property tests, "
            "e2e status with no API key",
        ),
        exact=True, feed=HyperliquidMarkFeed,
        execution=VenueExecution(HyperliquidExecutor, hyperliquid_permissions.read_permissions),
        transfers=True,
    ),
    Venue(
        "bingx", "BingX", BingxAdapter,
        _UNIFIED_TIERS,
        execution=None, transfers=False,
    ),
    Venue(
        "mexc", "MEXC", MexcAdapter,
        _UNIFIED_TIERS,
        execution=None, transfers=False,
    ),
    Venue(
        "weex", "WEEX", WeexAdapter,
        About(
            "cross and isolated", "",
            "publishes no maintenance rate: ratio and our liquidation price are `unknown` "
            "with a reason; the exchange's figure is shown",
        ),
        execution=None, transfers=False,
    ),
)  # fmt: skip

OTHER = Venue(
    "",
    "any other ccxt exchange",
    ExchangeAdapter,
    About(
        "as ccxt reports",
        "",
        "unified tiers where ccxt has them, else figures `unknown` with a reason, never a guess",
    ),
)
"""Every ccxt id without an entry."""


class RegistryError(Exception):
    """The registry contradicts itself or the engine: a bug, refused at import."""


def check_models(venues: Iterable[Venue], exact_models: Iterable[str]) -> None:
    """Each venue declared exact has an exact model under its id, and each exact model is
    declared: a venue must never be priced by the generic model while said to be exact,
    nor exactly while the README calls it generic."""
    declared = {v.ccxt_id for v in venues if v.exact}
    models = set(exact_models)
    problems = [
        f"{ccxt_id}: declared exact, but monitor/engine/models has no model for it "
        "(it would be priced by the generic model)"
        for ccxt_id in sorted(declared - models)
    ] + [
        f"{ccxt_id}: monitor/engine/models has an exact model for it, but the venue "
        "registry does not declare it exact"
        for ccxt_id in sorted(models - declared)
    ]
    if problems:
        raise RegistryError("; ".join(problems))


def _index(venues: Iterable[Venue]) -> dict[str, Venue]:
    index: dict[str, Venue] = {}
    for venue in venues:
        if venue.ccxt_id in index:
            raise RegistryError(f"{venue.ccxt_id}: declared twice")
        if venue.transfers and venue.execution is None:
            raise RegistryError(f"{venue.ccxt_id}: transfers declared without an executor")
        index[venue.ccxt_id] = venue
    return index


check_models(VENUES, EXACT_MODELS)
_BY_ID = _index(VENUES)


def venue_for(exchange_id: str) -> Venue:
    """The entry of a ccxt id; `OTHER` for an id without one."""
    return _BY_ID.get(exchange_id, OTHER)


def execution_for(exchange_id: str) -> VenueExecution | None:
    """How to act on the venue (confirm/auto), for the composer to hand to the
    controller; None: dry runs only."""
    return venue_for(exchange_id).execution


def adapter_for(exchange_id: str) -> ExchangeAdapter:
    """A fresh adapter for one account (adapters cache per-account state)."""
    return venue_for(exchange_id).adapter()


#: Arguments only the ccxt fallback understands: dropped for dedicated clients so the
#: caller can pass one uniform set of options for every exchange.
_FALLBACK_ONLY = ("client", "poll_interval")


def feed_for(exchange_id: str, *, fallback: str = "poll", **kwargs: Any) -> MarkFeed:
    """The mark feed for `exchange_id`, taking MarkFeed's arguments as keywords.

    Exchanges without a dedicated client need `client=` (a ccxt asyncio client; a ccxt.pro
    one for `fallback="watch"`) and take `poll_interval=`; `ws_origin` does not apply to
    them (point the ccxt client's own urls instead).
    """
    dedicated = venue_for(exchange_id).feed
    if dedicated is not None:
        for name in _FALLBACK_ONLY:
            kwargs.pop(name, None)
        return dedicated(exchange_id=exchange_id, **kwargs)
    if kwargs.get("client") is None:
        raise ValueError(f"no dedicated mark feed for {exchange_id!r}: pass client= (ccxt)")
    kwargs.pop("ws_origin", None)
    if fallback == "poll":
        return PollingMarkFeed(exchange_id=exchange_id, **kwargs)
    if fallback == "watch":
        kwargs.pop("poll_interval", None)
        return WatchMarkFeed(exchange_id=exchange_id, **kwargs)
    raise ValueError(f"fallback must be 'poll' or 'watch', not {fallback!r}")


def user_stream_for(
    poller: StreamedAccount,
    ws_origin: str | None = None,
    on_status: StatusCallback | None = None,
) -> BinanceUserStream | None:
    """The account's user stream, or None: its venue has none, or it cannot open one
    (no API key). Those accounts are polled only."""
    opener = venue_for(poller.account.exchange).user_stream
    return opener(poller, ws_origin, on_status) if opener is not None else None


def lacks(account: AccountConfig) -> list[tuple[tuple[str, ...], str]]:
    """What `account` asks of its venue that the venue cannot do: (key under the
    account, message) each, for the configuration loader to place by line."""
    venue = venue_for(account.exchange)
    actions = account.actions
    found: list[tuple[tuple[str, ...], str]] = []
    if actions.mode in LIVE and venue.execution is None:
        found.append(
            (
                ("actions", "mode"),
                f"{account.exchange}: automatic actions not available (mode "
                f"{actions.mode}); use dry_run or off for this account",
            )
        )
    if actions.reserve is not None and actions.mode != "off" and not venue.transfers:
        found.append(
            (
                ("actions", "reserve"),
                f"{account.exchange}: transfers not available; remove actions.reserve for "
                "this account (its defenses then use the futures wallet only)",
            )
        )
    return found
