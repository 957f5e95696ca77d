"""What `/silence` and `/unsilence` arguments name: a duration and an account or target.

Target names hold spaces ("BTC/USDT:USDT long cross"), so the duration is the last word
and everything before it names what to silence. Typing a full target on a phone is a
chore, so a unique case-insensitive fragment is enough ("btc"); an ambiguous one is
answered with the candidates instead of guessing, because silencing the wrong target
hides the warning that mattered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_SILENCE = 7 * 86400.0
"""Longer than a week is forgetting, not silencing: edit the configuration instead."""

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float | None:
    """`90s`, `30m`, `4h`, `1d` -> seconds; None when unreadable, zero or over a week."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        return None
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    return seconds if 0 < seconds <= MAX_SILENCE else None


@dataclass(frozen=True, slots=True)
class Choice:
    """A whole account (`target` None) or one target of one account."""

    account: str
    target: str | None

    def __str__(self) -> str:
        return self.account if self.target is None else f"{self.account}: {self.target}"


def resolve(
    words: Sequence[str], accounts: Iterable[str], targets: Iterable[tuple[str, str]]
) -> list[Choice]:
    """Every choice the words can mean; the caller acts only on exactly one.

    `accounts` are the names the chat may see, `targets` their (account, target) pairs.
    A leading account name narrows the fragment to that account ("main btc").
    """
    accounts = sorted(set(accounts))
    if not words:
        return []
    if len(words) == 1 and words[0] in accounts:
        return [Choice(words[0], None)]
    scope = accounts
    if len(words) > 1 and words[0] in accounts:
        scope, words = [words[0]], words[1:]
    fragment = " ".join(words).lower()
    pairs = sorted({(a, t) for a, t in targets if a in scope})
    exact = [Choice(a, t) for a, t in pairs if t.lower() == fragment]
    return exact or [Choice(a, t) for a, t in pairs if fragment in t.lower()]
