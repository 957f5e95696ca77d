"""Prometheus metrics for the daemon, on a registry of its own, served on loopback only.

Why an own `CollectorRegistry`: the global one collects whatever any imported library
registers and is shared by every `Metrics` in a process, so tests (and a reload that rebuilds
the daemon) would collide on duplicate names. Why loopback only: the figures describe
positions and balances; anyone who wants them remotely should put an authenticating proxy or
a local Prometheus agent in front, not open a port by accident.

Unknown figures: the engine gives None when it cannot compute a ratio or a distance. Such a
figure is exported as NaN, never dropped to 0 (which reads as "no risk") and never left at
its previous value (which reads as "still what it was"). NaN keeps the series visible,
satisfies no threshold comparison, and PromQL finds it with `x != x`. Infinite figures are
exported as they are: an infinite ratio means no equity is left (the worst reading, and
+Inf >= any threshold, so alerts fire), an infinite distance means no price liquidates.

Labels carry only account names, exchange ids, asset and market symbols, call names and
typed error kinds (monitor/exchange/errors.py): never an exception message, which can quote
a signed URL or key.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from threading import Thread
from typing import TYPE_CHECKING, Any, Self
from wsgiref.simple_server import WSGIServer

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from monitor.engine.levels import Level
from monitor.exchange.errors import ErrorKind, classify
from monitor.ops.health import Health

if TYPE_CHECKING:
    from monitor.engine.results import AccountRisk

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Tick-to-evaluation latency: the engine answers in well under a millisecond per account, so
# the interesting range is sub-millisecond (healthy) to seconds (event loop starved).
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip

# monitor.feeds.base.FeedStatus values, all exported from an exchange's first report so a dashboard
# sees every state (at 0) before it first changes; a state not listed here is added when it comes.
FEED_STATES = ("connecting", "live", "stale", "down")

_POOL_LABELS = ("account", "asset")
_POSITION_LABELS = ("account", "symbol", "side", "margin_mode")


def exported(value: float | None) -> float:
    """The sample for a figure: NaN when unknown (see the module docstring), else the value."""
    return math.nan if value is None else float(value)


def error_kind(error: BaseException | ErrorKind) -> str:
    """A label-safe error kind, one of the typed five (auth, rate_limit, network,
    exchange_down, bad_reply): what alerting rules key on, and never a message."""
    return error.value if isinstance(error, ErrorKind) else classify(error).kind.value


@dataclass
class MetricsServer:
    """The /metrics HTTP server running in a daemon thread; `close()` stops it."""

    server: WSGIServer
    thread: Thread
    host: str
    port: int

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class _Seen:
    """Label sets last exported per account, so series of closed positions can be dropped."""

    pools: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)
    positions: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)
    feed_states: dict[str, set[str]] = field(default_factory=dict)
    rest: dict[str, set[tuple[Counter, tuple[str, ...]]]] = field(default_factory=dict)


class Metrics:
    """Every metric the daemon exports, and the calls it makes to update them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.pool_margin_ratio = Gauge(
            "marginwatch_pool_margin_ratio",
            "Cross pool maintenance margin / margin balance (1 = liquidation; NaN = unknown).",
            _POOL_LABELS,
            registry=r,
        )
        self.pool_liquidation_distance = Gauge(
            "marginwatch_pool_liquidation_distance",
            "Uniform fractional price move that liquidates the cross pool (NaN = unknown).",
            _POOL_LABELS,
            registry=r,
        )
        self.position_margin_ratio = Gauge(
            "marginwatch_position_margin_ratio",
            "Margin ratio that liquidates the position: its pool's when cross (NaN = unknown).",
            _POSITION_LABELS,
            registry=r,
        )
        self.position_liquidation_distance = Gauge(
            "marginwatch_position_liquidation_distance",
            "|mark - liquidation price| / mark for the position (NaN = unknown).",
            _POSITION_LABELS,
            registry=r,
        )
        self.account_updated = Gauge(
            "marginwatch_account_last_evaluation_timestamp_seconds",
            "Unix time of the account's last evaluation: ratios older than this are stale.",
            ["account"],
            registry=r,
        )
        self.feed_last_message = Gauge(
            "marginwatch_feed_last_message_timestamp_seconds",
            "Unix time of the last message received on the exchange's stream.",
            ["exchange"],
            registry=r,
        )
        self.feed_state = Gauge(
            "marginwatch_feed_state",
            "1 for the exchange stream's current state, 0 for the others.",
            ["exchange", "state"],
            registry=r,
        )
        self.rest_calls = Counter(
            "marginwatch_rest_calls",
            "REST calls made to exchanges.",
            ["account", "exchange", "call"],
            registry=r,
        )
        self.rest_errors = Counter(
            "marginwatch_rest_errors",
            "Failed REST calls, by error kind (auth, rate_limit, network, exchange_down, "
            "bad_reply).",
            ["account", "exchange", "call", "kind"],
            registry=r,
        )
        self.events = Counter(
            "marginwatch_events",
            "Events emitted (level changes, unknown figures, feed trouble...).",
            ["kind", "level"],
            registry=r,
        )
        self.ticks = Counter(
            "marginwatch_ticks",
            "Mark-price ticks evaluated.",
            registry=r,
        )
        self.request_weight_used = Gauge(
            "marginwatch_request_weight_used",
            "Request weight used on the venue host in its current window (ours or the "
            "venue's header, whichever is higher).",
            ["host"],
            registry=r,
        )
        self.request_budget_waits = Gauge(
            "marginwatch_request_budget_waits",
            "Reads that waited for the host's request budget since start (non-zero and "
            "rising: polls are slowed).",
            ["host"],
            registry=r,
        )
        self.tick_latency = Histogram(
            "marginwatch_tick_to_evaluation_seconds",
            "Time from a tick's arrival to the end of its evaluation.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.healthy = Gauge(
            "marginwatch_healthy",
            "1 while healthy (first evaluation done, nothing blind: what /healthz says), else 0.",
            registry=r,
        )
        self.alert_storage_failing = Gauge(
            "marginwatch_alert_storage_failing",
            "1 while the alert store cannot be written: pages go out from memory, and a "
            "restart would lose the undelivered ones.",
            registry=r,
        )
        self.notifications_pending = Gauge(
            "marginwatch_notifications_pending",
            "Deliveries waiting (one per notification and destination), stored or in memory.",
            registry=r,
        )
        self._seen = _Seen()

    # -- margin figures -------------------------------------------------------------------

    def observe_pool(
        self, account: str, asset: str, ratio: float | None, distance: float | None
    ) -> None:
        """Set one cross pool's ratio and liquidation distance (None = unknown, NaN)."""
        key = (account, asset)
        self.pool_margin_ratio.labels(*key).set(exported(ratio))
        self.pool_liquidation_distance.labels(*key).set(exported(distance))
        self._seen.pools.setdefault(account, set()).add(key)

    def observe_position(
        self,
        account: str,
        symbol: str,
        side: str,
        margin_mode: str,
        ratio: float | None,
        distance: float | None,
    ) -> None:
        """Set one position's ratio and distance; `side` keeps hedge-mode legs apart."""
        key = (account, symbol, str(side), str(margin_mode))
        self.position_margin_ratio.labels(*key).set(exported(ratio))
        self.position_liquidation_distance.labels(*key).set(exported(distance))
        self._seen.positions.setdefault(account, set()).add(key)

    def observe_account(self, risk: AccountRisk, at: float | None = None) -> None:
        """Export a whole evaluated account, dropping pools and positions no longer in it.

        A closed position must vanish rather than keep its last ratio, which would go on
        reading as a live danger (or a live all-clear) forever.
        """
        old_pools = self._seen.pools.pop(risk.name, set())
        old_positions = self._seen.positions.pop(risk.name, set())
        for pool in risk.pools:
            self.observe_pool(risk.name, pool.asset, pool.margin_ratio, pool.liquidation_distance)
        for item in risk.positions:
            p = item.position
            self.observe_position(
                risk.name,
                p.symbol,
                p.side,
                p.margin_mode,
                item.margin_ratio,
                item.liquidation_distance,
            )
        self._drop_pools(old_pools - self._seen.pools.get(risk.name, set()))
        self._drop_positions(old_positions - self._seen.positions.get(risk.name, set()))
        self.account_updated.labels(risk.name).set(time.time() if at is None else at)

    def account_unknown(self, account: str) -> None:
        """Set every figure of an account to NaN, e.g. when its refresh failed.

        The positions are still open as far as we know, so their series stay; but their last
        ratios are no longer current and must not keep reading as if they were.
        """
        for key in self._seen.pools.get(account, ()):
            for metric in (self.pool_margin_ratio, self.pool_liquidation_distance):
                metric.labels(*key).set(math.nan)
        for key in self._seen.positions.get(account, ()):
            for metric in (self.position_margin_ratio, self.position_liquidation_distance):
                metric.labels(*key).set(math.nan)

    def forget_account(self, account: str) -> None:
        """Drop every series of an account (removed from the config, or reloading it).

        Counters go too: an account that no longer exists should not linger in dashboards.
        """
        self._drop_pools(self._seen.pools.pop(account, set()))
        self._drop_positions(self._seen.positions.pop(account, set()))
        _remove(self.account_updated, (account,))
        for metric, key in self._seen.rest.pop(account, set()):
            _remove(metric, key)

    def _drop_pools(self, keys: Iterable[tuple[str, ...]]) -> None:
        for key in keys:
            for metric in (self.pool_margin_ratio, self.pool_liquidation_distance):
                _remove(metric, key)

    def _drop_positions(self, keys: Iterable[tuple[str, ...]]) -> None:
        for key in keys:
            for metric in (self.position_margin_ratio, self.position_liquidation_distance):
                _remove(metric, key)

    # -- exchanges, feeds, events, ticks ---------------------------------------------------

    def rest_call(self, account: str, exchange: str, call: str) -> None:
        """Count one REST call (ccxt method name, e.g. fetch_positions)."""
        self._count(self.rest_calls, (account, exchange, call))

    def rest_error(
        self, account: str, exchange: str, call: str, error: BaseException | ErrorKind
    ) -> None:
        """Count one failed REST call; pass the exception (or its kind): only the kind is
        kept."""
        self._count(self.rest_errors, (account, exchange, call, error_kind(error)))

    def _count(self, counter: Counter, key: tuple[str, ...]) -> None:
        counter.labels(*key).inc()
        self._seen.rest.setdefault(key[0], set()).add((counter, key))

    def feed_message(self, exchange: str, ts: float | None = None) -> None:
        """Record that the exchange's stream just delivered a message (Unix time `ts`)."""
        self.feed_last_message.labels(exchange).set(time.time() if ts is None else ts)

    def feed_status(self, exchange: str, state: str) -> None:
        """Mark `state` as the stream's current one; every other state seen goes to 0."""
        seen = self._seen.feed_states.setdefault(exchange, set(FEED_STATES))
        seen.add(state)
        for known in seen:
            self.feed_state.labels(exchange, known).set(1.0 if known == state else 0.0)

    def request_budget(self, host: str, used: int, waits: int) -> None:
        """The state of one host's shared request budget (monitor/exchange/budget.py)."""
        self.request_weight_used.labels(host).set(used)
        self.request_budget_waits.labels(host).set(waits)

    def event(self, kind: str, level: Level | None) -> None:
        """Count one emitted event, e.g. event("level", Level.CRITICAL); "none" for an
        event no level applies to."""
        self.events.labels(kind, "none" if level is None else level.value).inc()

    def tick(self, latency: float | None = None) -> None:
        """Count one evaluated tick and, when known, its tick-to-evaluation latency."""
        self.ticks.inc()
        if latency is not None:
            self.tick_latency.observe(latency)

    def alert_delivery(self, *, storage_failing: bool, pending: int) -> None:
        """The alert outbox's state, sampled by the alerts plugin."""
        self.alert_storage_failing.set(1 if storage_failing else 0)
        self.notifications_pending.set(pending)

    # -- serving ----------------------------------------------------------------------------

    def start_http(
        self,
        port: int,
        host: str = "127.0.0.1",
        *,
        allow_non_loopback: bool = False,
        health: Health | None = None,
    ) -> MetricsServer:
        """Serve /metrics (and /healthz, given `health`) from a daemon thread; `port=0`
        picks a free port.

        A thread rather than the daemon's event loop, so a scrape still answers (with a
        stale `marginwatch_account_last_evaluation_timestamp_seconds`) if the loop wedges.
        """
        if not allow_non_loopback and not is_loopback(host):
            raise ValueError(
                f"metrics host {host!r} is not a loopback address; positions and balances "
                "are served unauthenticated, so bind to 127.0.0.1 or ::1"
            )
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        if health is not None:
            server.set_app(with_healthz(server.get_app(), health))
        return MetricsServer(server, thread, host, server.server_port)


def with_healthz(metrics_app: WSGIApp, health: Health) -> WSGIApp:
    """/healthz: 200 with {"status": "ok", ...} while healthy, 503 otherwise; the rest
    goes to the metrics app. For load balancers, Kubernetes probes and uptime checkers
    that pull rather than wait for a push."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/healthz":
            return metrics_app(environ, start_response)
        healthy, body = health.verdict()
        payload = orjson.dumps(body)
        status = "200 OK" if healthy else "503 Service Unavailable"
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                   ("Cache-Control", "no-store")]  # fmt: skip
        start_response(status, headers)
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else payload]

    return app


def is_loopback(host: str) -> bool:
    """True for a loopback address literal (127.0.0.0/8, ::1) or the name "localhost".

    Other names are refused rather than resolved: what DNS says today is no promise about
    tomorrow, and "localhost" is loopback by definition (RFC 6761).
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _remove(metric: Gauge | Counter, key: tuple[str, ...]) -> None:
    with contextlib.suppress(KeyError):  # already gone: removal is idempotent
        metric.remove(*key)
