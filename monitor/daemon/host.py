"""The plugin boundary's implementation (monitor/daemon/plugins.py): a read-only view of
whichever daemon runs now, and the commands a plugin may give it.

Both look the daemon up on every call, because a reload swaps it: a plugin holding the
host never holds a stale daemon.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from monitor.actions.controller import Confirmer
from monitor.actions.guards import KillSwitch
from monitor.actions.journal import ActionRow
from monitor.bus import EventBus, M, Subscription
from monitor.config import Config
from monitor.daemon.account import AccountState
from monitor.daemon.plugins import FeedState
from monitor.daemon.service import Daemon
from monitor.domain import AccountSnapshot
from monitor.engine.book import AccountBook
from monitor.engine.levels import Level
from monitor.engine.results import AccountRisk, PoolRisk, PositionRisk
from monitor.feeds import FeedStatus
from monitor.ops.metrics import Metrics


class DaemonView:
    """`DaemonState` over the daemon `daemon_of()` returns, configured by `config_of()`."""

    def __init__(self, daemon_of: Callable[[], Daemon], config_of: Callable[[], Config]) -> None:
        self._daemon_of = daemon_of
        self._config_of = config_of

    @property
    def config(self) -> Config:
        return self._config_of()

    def _state(self, account: str) -> AccountState | None:
        poller = self._daemon_of().pollers.get(account)
        return poller.state if poller is not None else None

    def accounts(self) -> tuple[str, ...]:
        return tuple(self._daemon_of().pollers)

    def exchange(self, account: str) -> str | None:
        state = self._state(account)
        return state.account.exchange if state is not None else None

    def snapshot(self, account: str) -> AccountSnapshot | None:
        state = self._state(account)
        return state.snapshot if state is not None else None

    def book(self, account: str) -> AccountBook | None:
        state = self._state(account)
        return state.book if state is not None else None

    def marks(self, account: str) -> Mapping[str, float]:
        state = self._state(account)
        return state.marks if state is not None else {}

    def risk(self, account: str) -> AccountRisk | None:
        state = self._state(account)
        return state.current() if state is not None else None

    def pools(self, account: str) -> Mapping[str, PoolRisk]:
        state = self._state(account)
        return state.latest_pools if state is not None else {}

    def positions(self, account: str) -> Mapping[str, PositionRisk]:
        state = self._state(account)
        return state.latest_positions if state is not None else {}

    def level(self, account: str, target: str) -> Level | None:
        return self._daemon_of().tracker.last(account, target)

    def levels(self) -> list[tuple[tuple[str, str], Level]]:
        return self._daemon_of().tracker.items()

    def feeds(self) -> tuple[FeedState, ...]:
        return tuple(
            FeedState(
                group.target,
                tuple(m.name for m in group.monitors),
                live=group.feed is not None and group.feed.status is FeedStatus.LIVE,
                blind=group.blind,
            )
            for group in self._daemon_of().groups.values()
        )

    def last_read(self, account: str) -> float | None:
        poller = self._daemon_of().pollers.get(account)
        return poller.last_ok if poller is not None else None

    def journal(self, account: str, limit: int = 10) -> list[ActionRow]:
        journal = self._daemon_of().journal
        return journal.recent(account, limit) if journal is not None else []

    def paused(self) -> str | None:
        daemon = self._daemon_of()
        return daemon.kill_switch.reason(self.config.actions)


class DaemonHost(DaemonView):
    """`PluginHost`: the view, plus the commands, over a runner's swappable daemon.

    The kill switch, the bus and `confirmer` belong to the runner and outlive every
    daemon it builds: the runner hands `confirmer` to each one it builds."""

    def __init__(
        self,
        daemon_of: Callable[[], Daemon],
        config_of: Callable[[], Config],
        *,
        bus: EventBus,
        kill_switch: KillSwitch,
        metrics: Metrics,
    ) -> None:
        super().__init__(daemon_of, config_of)
        self._bus = bus
        self._kill_switch = kill_switch
        self._metrics = metrics
        self.confirmer: Confirmer | None = None

    def pause_actions(self, reason: str) -> None:
        self._kill_switch.pause(reason)

    def resume_actions(self) -> str | None:
        self._kill_switch.resume()
        return self.paused()

    def answer_confirmations(self, confirmer: Confirmer) -> None:
        self.confirmer = confirmer
        self._daemon_of().answer_confirmations(confirmer)

    def report_alert_delivery(self, *, storage_failing: bool, pending: int) -> None:
        self._metrics.alert_delivery(storage_failing=storage_failing, pending=pending)

    def subscribe(
        self, kind: type[M], handler: Callable[[M], None], *, account: str | None = None
    ) -> Subscription:
        return self._bus.subscribe(kind, handler, account=account)
