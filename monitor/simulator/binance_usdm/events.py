"""User-data stream events, rendered the way Binance USD-M sends them, and published.

The monitor reads these to learn about fills and liquidations without polling, so the
shapes follow Binance's documented ACCOUNT_UPDATE / ORDER_TRADE_UPDATE / MARGIN_CALL
events field for field (numbers as strings). A fill is reported as Binance reports it:
ORDER_TRADE_UPDATE (NEW), then ACCOUNT_UPDATE, then ORDER_TRADE_UPDATE (filled);
a liquidation order has type LIQUIDATION, a client id `autoclose-...` and execution type
CALCULATED.
"""

from __future__ import annotations

from typing import Any

from monitor.simulator.binance_usdm.accounting import asset_summary, position_figures
from monitor.simulator.binance_usdm.render import break_even_price, num
from monitor.simulator.binance_usdm.state import (
    PositionSide,
    SimAccount,
    SimExchange,
    SimOrder,
    SimPosition,
)

LIQUIDATION = "LIQUIDATION"


def balance_entry(
    exchange: SimExchange, account: SimAccount, asset: str, balance_change: float = 0.0
) -> dict[str, str]:
    """`B` row: wallet (cross + isolated wallets) and cross wallet of one asset, and `bc`,
    Binance's "balance change except PnL and commission" (a transfer's amount)."""
    summary = asset_summary(exchange, account, asset)
    return {
        "a": asset,
        "wb": num(summary.wallet_balance),
        "cw": num(summary.cross_wallet),
        "bc": num(balance_change) if balance_change else "0",
    }


def position_entry(
    exchange: SimExchange, account: SimAccount, symbol: str, side: PositionSide
) -> dict[str, str]:
    """`P` row of one leg; a closed leg is reported flat, as Binance does after a close."""
    position = account.position(symbol, side) or SimPosition(
        symbol, 0.0, 0.0, side, account.settings(symbol).margin_type
    )
    market = exchange.market(symbol)
    pnl = position_figures(exchange, position).unrealized_pnl if position.amount else 0.0
    return {
        "s": symbol,
        "pa": num(position.amount, market.quantity_precision),
        "ep": num(position.entry_price),
        "bep": num(break_even_price(position, account.taker_fee_rate)),
        "cr": num(position.realized_pnl),
        "up": num(pnl),
        "mt": position.margin_type,
        "iw": num(position.isolated_wallet if position.is_isolated else 0.0),
        "ps": side,
        "ma": market.margin_asset,
    }


def account_update(
    exchange: SimExchange,
    account: SimAccount,
    reason: str,
    asset: str,
    legs: list[tuple[str, PositionSide]],
    *,
    balance_change: float = 0.0,
) -> dict[str, Any]:
    """ACCOUNT_UPDATE for one asset and the legs that changed (none for cross funding
    or a transfer)."""
    now = exchange.clock_ms()
    return {
        "e": "ACCOUNT_UPDATE",
        "E": now,
        "T": now,
        "a": {
            "m": reason,
            "B": [balance_entry(exchange, account, asset, balance_change)],
            "P": [position_entry(exchange, account, symbol, side) for symbol, side in legs],
        },
    }


def order_trade_update(exchange: SimExchange, order: SimOrder, *, filled: bool) -> dict[str, Any]:
    """ORDER_TRADE_UPDATE of a market or liquidation order, before or after its fill."""
    market = exchange.market(order.symbol)
    qty_places = market.quantity_precision
    liquidation = order.type == LIQUIDATION
    if filled:
        execution = "CALCULATED" if liquidation else "TRADE"
        status, last_qty, last_price = "FILLED", order.executed_qty, order.avg_price
    else:
        execution, status, last_qty, last_price = "NEW", "NEW", 0.0, 0.0
    now = exchange.clock_ms()
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": now,
        "T": order.time_ms,
        "o": {
            "s": order.symbol,
            "c": order.client_order_id,
            "S": order.side,
            "o": order.type,
            "f": "IOC" if liquidation else "GTC",
            "q": num(order.orig_qty, qty_places),
            "p": "0",
            "ap": num(order.avg_price if filled else 0.0),
            "sp": "0",
            "x": execution,
            "X": status,
            "i": order.order_id,
            "l": num(last_qty, qty_places),
            "z": num(last_qty, qty_places),
            "L": num(last_price),
            "N": market.margin_asset,
            "n": num(order.commission if filled else 0.0),
            "T": order.time_ms,
            "t": order.order_id if filled else 0,
            "b": "0",
            "a": "0",
            "m": False,
            "R": order.reduce_only,
            "wt": "CONTRACT_PRICE",
            "ot": order.type,
            "ps": order.position_side,
            "cp": False,
            "rp": num(order.realized_pnl if filled else 0.0),
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": "EXPIRE_MAKER",
            "pm": "NONE",
            "gtd": 0,
        },
    }


def margin_call(
    exchange: SimExchange, account: SimAccount, positions: list[SimPosition], cross: bool
) -> dict[str, Any]:
    """MARGIN_CALL for a cross pool (with its cross wallet `cw`) or one isolated leg."""
    rows = []
    for position in positions:
        figures = position_figures(exchange, position)
        market = exchange.market(position.symbol)
        rows.append(
            {
                "s": position.symbol,
                "ps": position.position_side,
                "pa": num(position.amount, market.quantity_precision),
                "mt": "ISOLATED" if position.is_isolated else "CROSSED",
                "iw": num(position.isolated_wallet if position.is_isolated else 0.0),
                "mp": num(figures.mark),
                "up": num(figures.unrealized_pnl),
                "mm": num(figures.maint_margin),
            }
        )
    event: dict[str, Any] = {"e": "MARGIN_CALL", "E": exchange.clock_ms()}
    if cross and positions:
        asset = exchange.market(positions[0].symbol).margin_asset
        event["cw"] = num(account.cross_wallet.get(asset, 0.0))
    event["p"] = rows
    return event


def publish_fill(exchange: SimExchange, account: SimAccount, order: SimOrder) -> None:
    """Publish a fill already applied to `account`: NEW, ACCOUNT_UPDATE, then the fill."""
    asset = exchange.market(order.symbol).margin_asset
    exchange.publish(account, order_trade_update(exchange, order, filled=False))
    legs = [(order.symbol, order.position_side)]
    exchange.publish(account, account_update(exchange, account, "ORDER", asset, legs))
    exchange.publish(account, order_trade_update(exchange, order, filled=True))
