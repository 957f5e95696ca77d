"""Universal transfers between the spot, funding and USD-M futures wallets of one account.

Binance's endpoints (Wallet API, "User Universal Transfer" and "Query User Universal
Transfer History", developers.binance.com/docs/wallet/asset/user-universal-transfer):
- `POST /sapi/v1/asset/transfer` type, asset, amount -> `{"tranId": 13526853623}`;
- `GET /sapi/v1/asset/transfer` type, startTime, endTime, current (page, from 1), size
  (default 10, max 100) -> `{"total": 2, "rows": [{"asset", "amount", "type", "status",
  "tranId", "timestamp"}]}`, newest first, the last 7 days when no time is sent.
A transfer has no client id, so a caller whose reply was lost looks it up in that history.

Error replies, as Binance's error-code list gives them (developers.binance.com/docs/
wallet/error-code; the same 5xxx list is in .../derivatives/portfolio-margin-pro/error-code):
- a missing parameter: -1102 "Mandatory parameter 'type' was not sent, ...";
- a source wallet short of the amount: -5002 "You have insufficient balance.";
- an amount <= 0: -5007 "Quantity must be greater than zero.";
- an amount that is not a number, or a type this venue does not route: -1130 "Data sent
  for parameter '...' is not valid." (Binance documents no dedicated code for an unknown
  transfer type; -1130 is its generic code for an invalid value);
- a key without universal-transfer permission: -1002 "You are not authorized to execute
  this request." (HTTP 401).
Futures -> elsewhere is limited to the futures `maxWithdrawAmount` (what Binance lets leave
the futures wallet: min(available balance, cross wallet)); past it this venue answers
-5002 too (Binance documents no separate code for that case).

ccxt 4.5.90 `binance`/`binanceusdm` call these through `transfer(code, amount, from, to)`
(`sapiPostAssetTransfer`) and `fetch_transfers(code, since, limit, params)`
(`sapiGetAssetTransfer`, `params={"type": "MAIN_UMFUTURE"}` or `fromAccount`/`toAccount`).
ccxt's account names are 'spot' (MAIN), 'funding' (FUNDING) and 'linear' or 'swap'
(UMFUTURE); 'future' is NOT one of them in 4.5.90: ccxt takes it for an isolated-margin
symbol and sends type MAIN_ISOLATED_MARGIN, which this venue refuses (-1130, type).

Every transfer in or out of futures is published on the user stream as Binance reports it:
ACCOUNT_UPDATE with reason DEPOSIT (into futures) or WITHDRAW (out of futures), the asset's
new wallet and cross wallet, and the amount in `bc` (balance change except PnL and fees).
"""

from __future__ import annotations

from typing import Any

from monitor.simulator.binance_usdm import errors, events
from monitor.simulator.binance_usdm.accounting import asset_summary
from monitor.simulator.binance_usdm.errors import BinanceApiError
from monitor.simulator.binance_usdm.render import num
from monitor.simulator.binance_usdm.state import SimAccount, SimExchange, SimTransfer
from monitor.simulator.binance_usdm.trading import parse_number, require

FUTURES = "UMFUTURE"
WALLETS = ("MAIN", "FUNDING", FUTURES)
"""Wallets this venue routes between; a type is SOURCE_DESTINATION of two different ones."""
TRANSFER_TYPES = frozenset(f"{a}_{b}" for a in WALLETS for b in WALLETS if a != b)

DEFAULT_WINDOW_MS = 7 * 24 * 3600 * 1000
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100


def insufficient_balance() -> BinanceApiError:
    return BinanceApiError(-5002, "You have insufficient balance.")


def amount_not_positive() -> BinanceApiError:
    return BinanceApiError(-5007, "Quantity must be greater than zero.")


def not_authorized() -> BinanceApiError:
    return BinanceApiError(-1002, "You are not authorized to execute this request.", status=401)


def _transfer_type(params: dict[str, str]) -> str:
    kind = require(params, "type").upper()
    if kind not in TRANSFER_TYPES:
        raise errors.invalid_param("type")
    return kind


def _amount(params: dict[str, str]) -> float:
    amount = parse_number(params, "amount")
    if amount <= 0:
        raise amount_not_positive()
    return amount


def _wallet(account: SimAccount, name: str) -> dict[str, float]:
    return {"MAIN": account.spot, "FUNDING": account.funding, FUTURES: account.cross_wallet}[name]


def _free(exchange: SimExchange, account: SimAccount, wallet: str, asset: str) -> float:
    """What may leave `wallet`: the free balance, or futures' maxWithdrawAmount."""
    if wallet == FUTURES:
        return asset_summary(exchange, account, asset).max_withdraw_amount
    return _wallet(account, wallet).get(asset, 0.0)


def transfer(exchange: SimExchange, account: SimAccount, params: dict[str, str]) -> SimTransfer:
    """Carry out POST /sapi/v1/asset/transfer: move at once, record, publish."""
    if not account.can_transfer:
        raise not_authorized()
    kind = _transfer_type(params)
    asset = require(params, "asset").upper()
    amount = _amount(params)
    source, destination = kind.split("_")
    if amount > _free(exchange, account, source, asset) + 1e-9:
        raise insufficient_balance()
    now = exchange.clock_ms()
    source_wallet, destination_wallet = _wallet(account, source), _wallet(account, destination)
    source_wallet[asset] = source_wallet.get(asset, 0.0) - amount
    destination_wallet[asset] = destination_wallet.get(asset, 0.0) + amount
    record = SimTransfer(
        tran_id=exchange.next_tran_id, asset=asset, amount=amount, type=kind, time_ms=now
    )
    exchange.next_tran_id += 1
    account.transfers.append(record)
    if FUTURES in (source, destination):
        account.update_time_ms = now
        into_futures = destination == FUTURES
        update = events.account_update(
            exchange,
            account,
            "DEPOSIT" if into_futures else "WITHDRAW",
            asset,
            [],
            balance_change=amount if into_futures else -amount,
        )
        exchange.publish(account, update)
    return record


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise errors.invalid_param(name) from None


def history(exchange: SimExchange, account: SimAccount, params: dict[str, str]) -> dict[str, Any]:
    """GET /sapi/v1/asset/transfer: one type's transfers in a time window, newest first."""
    kind = _transfer_type(params)
    end = _int_param(params, "endTime", exchange.clock_ms())
    start = _int_param(params, "startTime", end - DEFAULT_WINDOW_MS)
    page = max(1, _int_param(params, "current", 1))
    size = min(MAX_PAGE_SIZE, max(1, _int_param(params, "size", DEFAULT_PAGE_SIZE)))
    matching = [
        t for t in reversed(account.transfers) if t.type == kind and start <= t.time_ms <= end
    ]
    rows = matching[(page - 1) * size : page * size]
    return {"total": len(matching), "rows": [render_transfer(t) for t in rows]}


def render_transfer(record: SimTransfer) -> dict[str, Any]:
    return {
        "asset": record.asset,
        "amount": num(record.amount).rstrip("0").rstrip("."),
        "type": record.type,
        "status": record.status,
        "tranId": record.tran_id,
        "timestamp": record.time_ms,
    }
