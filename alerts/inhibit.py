"""Inhibition: which alerts a worse, more basic alert makes pointless to send.

Two rules, as in Alertmanager:
- a higher level mutes the lower ones of the same target. The state machine keeps one
  level per target, and the grouper re-reads it at flush time, so a warn overtaken by a
  critical within one burst is never sent on its own; nothing is left to do here.
- a blind feed mutes the PRICE alerts of every account priced by it: their marks are
  stale, so their levels say nothing new, and one "feed blind" page says it all. The
  blind alert itself still pages. The muted alerts are held, not dropped, so whatever
  is still true when the feed sees again is said then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set

from alerts.rules import Alert, Rule
from monitor.engine.levels import Level


def blind_feeds(alerts: Iterable[Alert]) -> set[str]:
    """Feed targets whose BLIND alert is active (not yet back to ok)."""
    return {
        a.key.target
        for a in alerts
        if a.key.rule is Rule.BLIND and a.key.account is None and a.level is not Level.OK
    }


def inhibited_accounts(
    feeds: Set[str], feed_accounts: Mapping[str, Iterable[str]]
) -> frozenset[str]:
    """Accounts whose price alerts the blind `feeds` mute."""
    return frozenset(account for feed in feeds for account in feed_accounts.get(feed, ()))


def inhibited(alert: Alert, accounts: Set[str]) -> bool:
    return alert.key.rule is Rule.PRICE and alert.key.account in accounts
