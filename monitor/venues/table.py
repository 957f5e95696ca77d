"""The exchange table, printed from the venue registry: the README's section (markdown) and
`marginwatch venues` (a terminal screen of 80 columns). Neither is written by hand, so
neither can promise what a venue cannot do."""

from __future__ import annotations

import argparse

from monitor.venues.registry import OTHER, VENUES, Venue

ROWS: tuple[Venue, ...] = (*VENUES, OTHER)


def _exchange(venue: Venue) -> str:
    return f"{venue.name} (`{venue.ccxt_id}`)" if venue.ccxt_id else venue.name


def _model(venue: Venue) -> str:
    return ("exact" if venue.exact else "**generic**") + venue.about.model


def _data(venue: Venue) -> str:
    marks = "websocket marks" if venue.feed else "marks polled through ccxt"
    account = "user data stream (with an API key)" if venue.user_stream else "account polled"
    return f"{marks}; {account}"


def _defense(venue: Venue) -> str:
    if venue.execution is None:
        return "dry run only"
    return "yes; reserve transfers" if venue.transfers else "yes; no reserve transfers"


def markdown() -> str:
    """The README's exchange table (section "Exchanges"), one row per registry entry."""
    lines = [
        "| exchange (ccxt id) | margin modes | model | live data | "
        "defense (`confirm`/`auto`) | what is checked |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for venue in ROWS:
        cells = (
            _exchange(venue),
            venue.about.margin_modes,
            _model(venue),
            _data(venue),
            _defense(venue),
            venue.about.checked,
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_SCREEN_COLUMNS = ("exchange", "model", "marks", "account", "confirm/auto", "reserve")


def screen() -> str:
    """What `marginwatch venues` prints: each venue's capabilities, one line each."""
    rows = [_SCREEN_COLUMNS] + [
        (
            venue.ccxt_id or "(any other)",
            "exact" if venue.exact else "generic",
            "websocket" if venue.feed else "ccxt poll",
            "user stream" if venue.user_stream else "polled",
            "yes" if venue.execution is not None else "dry run only",
            "transfers" if venue.transfers else "no",
        )
        for venue in ROWS
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_SCREEN_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines += ["", "Margin modes and evidence: marginwatch venues --markdown (the README's table)"]
    return "\n".join(lines) + "\n"


def command(args: argparse.Namespace) -> int:
    """`marginwatch venues [--markdown]`."""
    print(markdown() if args.markdown else screen(), end="")
    return 0
