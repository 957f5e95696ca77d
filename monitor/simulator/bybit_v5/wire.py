"""Bybit v5's wire: the reply envelope, retCode errors, request signing, and the rows
of the endpoints the simulated Bybit serves, in Bybit's field order and types (numbers
as strings, integer enums as integers), from the v5 API docs and ccxt 4.5.90's parser.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
import uuid
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

RECV_WINDOW_MS = 5000
"""Bybit's default recv window when a request sends none."""
FUTURE_TOLERANCE_MS = 1000
"""Bybit accepts server_time - recv_window <= timestamp < server_time + 1000."""


class BybitError(Exception):
    """A refused request: rendered as Bybit's envelope with this retCode."""

    def __init__(self, ret_code: int, ret_msg: str, http_status: int = 200) -> None:
        super().__init__(f"{ret_code}: {ret_msg}")
        self.ret_code = ret_code
        self.ret_msg = ret_msg
        self.http_status = http_status


def param_error(message: str) -> BybitError:
    return BybitError(10001, message)


def permission_denied() -> BybitError:
    return BybitError(10005, "Permission denied, please check your API key permissions.")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def reply(result: dict[str, Any]) -> web.Response:
    body = {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now_ms()}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def error_reply(error: BybitError) -> web.Response:
    body = {
        "retCode": error.ret_code,
        "retMsg": error.ret_msg,
        "result": {},
        "retExtInfo": {},
        "time": now_ms(),
    }
    return web.Response(
        body=orjson.dumps(body), status=error.http_status, content_type="application/json"
    )


def sign(secret: str, timestamp: str, api_key: str, recv_window: str, payload: str) -> str:
    """X-BAPI-SIGN: hex HMAC-SHA256 of timestamp + key + recv window + payload (the raw
    query string of a GET, the raw JSON body of a POST)."""
    message = f"{timestamp}{api_key}{recv_window}{payload}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def check_signature(headers: Any, *, secret: str, api_key: str, payload: str, now: int) -> None:
    """Bybit's checks after the key is known: 10002 for a timestamp outside the recv
    window, 10004 (with Bybit's `error sign!` message) for a wrong signature."""
    timestamp = headers.get("X-BAPI-TIMESTAMP", "")
    recv_window = headers.get("X-BAPI-RECV-WINDOW", str(RECV_WINDOW_MS))
    try:
        ts, window = int(timestamp), int(recv_window)
    except ValueError:
        raise param_error("params error: X-BAPI-TIMESTAMP or X-BAPI-RECV-WINDOW invalid") from None
    if not now - window <= ts < now + FUTURE_TOLERANCE_MS:
        raise BybitError(
            10002,
            "invalid request, please check your server timestamp or recv_window param. "
            f"req_timestamp[{ts}],server_timestamp[{now}],recv_window[{window}]",
        )
    expected = sign(secret, timestamp, api_key, recv_window, payload)
    if not hmac.compare_digest(expected, headers.get("X-BAPI-SIGN", "")):
        origin = f"{timestamp}{api_key}{recv_window}{payload}"
        raise BybitError(10004, f"error sign! origin_string[{origin}]")


def limit(params: dict[str, Any], default: int, maximum: int) -> int:
    """A request's `limit`: the endpoint's default when absent, 10001 outside [1, maximum]."""
    raw = params.get("limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise param_error("params error: limit invalid") from None
    if not 1 <= value <= maximum:
        raise param_error(f"params error: limit must be in [1, {maximum}]")
    return value


def paginate(rows: list[Any], size: int, cursor: str | None) -> tuple[list[Any], str]:
    """Bybit's cursor pagination: one page and the `nextPageCursor`, "" at the end. The
    cursor is opaque and URL-encoded like Bybit's ("0%3A1657711949945"): a client must send
    it back verbatim, which also exercises signing of an encoded query value."""
    offset = 0
    if cursor:
        try:
            offset = int(cursor.split(":", 1)[0])
        except ValueError:
            raise param_error("params error: cursor invalid") from None
    following = offset + size
    more = following < len(rows)
    return rows[offset:following], (quote(f"{following}:{following}", safe="") if more else "")


def text(value: float, places: int = 8) -> str:
    """A number as Bybit writes it: plain decimal, no exponent, no trailing zeros."""
    if not math.isfinite(value):
        return ""
    rendered = f"{value:.{places}f}"
    rendered = rendered.rstrip("0").rstrip(".") if "." in rendered else rendered
    return "0" if rendered in ("-0", "") else rendered


def order_uuid(order_id: int) -> str:
    """Bybit's orderId is a UUID string; the simulator numbers orders, so the UUID
    carries the number."""
    return str(uuid.UUID(int=order_id))


def order_number(order_uuid_text: str) -> int | None:
    try:
        return uuid.UUID(order_uuid_text).int
    except ValueError:
        return None


def instrument_row(
    *,
    symbol: str,
    base: str,
    quote: str,
    tick_size: str,
    qty_step: str,
    min_qty: str,
    max_qty: str,
    max_leverage: str,
    price_scale: str,
    min_notional: str = "5",
    contract_type: str = "LinearPerpetual",
    settle: str | None = None,
    status: str = "Trading",
    launch_time: str = "1585526400000",
    funding_interval: int = 480,
) -> dict[str, Any]:
    """One row of `/v5/market/instruments-info`."""
    return {
        "symbol": symbol,
        "contractType": contract_type,
        "status": status,
        "baseCoin": base,
        "quoteCoin": quote,
        "launchTime": launch_time,
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": price_scale,
        "leverageFilter": {"minLeverage": "1", "maxLeverage": max_leverage, "leverageStep": "0.01"},
        "priceFilter": {"minPrice": tick_size, "maxPrice": "1999999.80", "tickSize": tick_size},
        "lotSizeFilter": {
            "maxOrderQty": max_qty,
            "minOrderQty": min_qty,
            "qtyStep": qty_step,
            "postOnlyMaxOrderQty": max_qty,
            "maxMktOrderQty": max_qty,
            "minNotionalValue": min_notional,
        },
        "unifiedMarginTrade": True,
        "fundingInterval": funding_interval,
        "settleCoin": settle or quote,
        "copyTrading": "both",
        "upperFundingRate": "0.005",
        "lowerFundingRate": "-0.005",
        "isPreListing": False,
        "preListingInfo": None,
        "displayName": "",
    }


def ticker_row(
    *,
    symbol: str,
    mark: str,
    index: str,
    last: str,
    funding_rate: str,
    next_funding_time: str,
    open_interest: str = "0",
    open_interest_value: str = "0",
) -> dict[str, Any]:
    """One row of `/v5/market/tickers` (linear/inverse), also the `tickers.<symbol>`
    stream's snapshot. `openInterestValue` must be present: ccxt's parse_ticker treats a
    ticker without it as a spot ticker."""
    return {
        "symbol": symbol,
        "lastPrice": last,
        "indexPrice": index,
        "markPrice": mark,
        "prevPrice24h": last,
        "price24hPcnt": "0",
        "highPrice24h": last,
        "lowPrice24h": last,
        "prevPrice1h": last,
        "openInterest": open_interest,
        "openInterestValue": open_interest_value,
        "turnover24h": "0",
        "volume24h": "0",
        "fundingRate": funding_rate,
        "nextFundingTime": next_funding_time,
        "predictedDeliveryPrice": "",
        "basisRate": "",
        "deliveryFeeRate": "",
        "deliveryTime": "0",
        "ask1Size": "1",
        "bid1Price": last,
        "ask1Price": last,
        "bid1Size": "1",
        "basis": "",
    }


def risk_limit_row(
    *,
    tier_id: int,
    symbol: str,
    risk_limit_value: str,
    maintenance_margin: str,
    initial_margin: str,
    max_leverage: str,
    mm_deduction: str,
) -> dict[str, Any]:
    """One row of `/v5/market/risk-limit`; Bybit sends mmDeduction "" on the first tier."""
    return {
        "id": tier_id,
        "symbol": symbol,
        "riskLimitValue": risk_limit_value,
        "maintenanceMargin": maintenance_margin,
        "initialMargin": initial_margin,
        "isLowestRisk": 1 if tier_id == 1 else 0,
        "maxLeverage": max_leverage,
        "mmDeduction": "" if tier_id == 1 else mm_deduction,
    }


def position_row(
    *,
    symbol: str,
    side: str,
    size: str,
    avg_price: str,
    position_value: str,
    leverage: str,
    trade_mode: int,
    mark_price: str,
    liq_price: str,
    position_im: str,
    position_mm: str,
    position_balance: str,
    unrealised_pnl: str,
    cur_realised_pnl: str,
    cum_realised_pnl: str,
    position_idx: int = 0,
    risk_id: int = 1,
    risk_limit_value: str = "",
    position_status: str = "Normal",
    auto_add_margin: int = 0,
    created_time: str = "0",
    updated_time: str = "0",
    seq: int = 0,
    position_im_by_mp: str | None = None,
    position_mm_by_mp: str | None = None,
) -> dict[str, Any]:
    """One row of `/v5/position/list` (and the add-margin reply). `liqPrice` is "" for a
    unified cross position; `bustPrice` is deprecated and always "". Bybit also sends IM
    and MM valued at the mark (`...ByMp`); left out when not given."""
    row: dict[str, Any] = {
        "positionIdx": position_idx,
        "riskId": risk_id,
        "riskLimitValue": risk_limit_value,
        "symbol": symbol,
        "side": side,
        "size": size,
        "avgPrice": avg_price,
        "positionValue": position_value,
        "tradeMode": trade_mode,
        "autoAddMargin": auto_add_margin,
        "positionStatus": position_status,
        "leverage": leverage,
        "markPrice": mark_price,
        "liqPrice": liq_price,
        "bustPrice": "",
        "positionIM": position_im,
        "positionMM": position_mm,
        "positionBalance": position_balance,
        "tpslMode": "Full",
        "takeProfit": "",
        "stopLoss": "",
        "trailingStop": "0",
        "sessionAvgPrice": "",
        "unrealisedPnl": unrealised_pnl,
        "curRealisedPnl": cur_realised_pnl,
        "cumRealisedPnl": cum_realised_pnl,
        "adlRankIndicator": 2,
        "isReduceOnly": False,
        "mmrSysUpdatedTime": "",
        "leverageSysUpdatedTime": "",
        "createdTime": created_time,
        "updatedTime": updated_time,
        "seq": seq,
    }
    if position_im_by_mp is not None:
        row["positionIMByMp"] = position_im_by_mp
    if position_mm_by_mp is not None:
        row["positionMMByMp"] = position_mm_by_mp
    return row


def order_row(
    *,
    order_id: str,
    order_link_id: str,
    symbol: str,
    side: str,
    order_type: str,
    qty: str,
    price: str,
    time_in_force: str,
    reduce_only: bool,
    position_idx: int,
    status: str,
    avg_price: str,
    cum_exec_qty: str,
    cum_exec_value: str,
    cum_exec_fee: str,
    created_time: str,
    create_type: str = "CreateByUser",
) -> dict[str, Any]:
    """One row of `/v5/order/realtime` and `/v5/order/history`: orders that never rest
    (filled in full, or cancelled with nothing filled)."""
    return {
        "orderId": order_id,
        "orderLinkId": order_link_id,
        "blockTradeId": "",
        "symbol": symbol,
        "price": price,
        "qty": qty,
        "side": side,
        "isLeverage": "",
        "positionIdx": position_idx,
        "orderStatus": status,
        "createType": create_type,
        "cancelType": "UNKNOWN" if status == "Filled" else "CancelByUser",
        "rejectReason": "EC_NoError",
        "avgPrice": avg_price,
        "leavesQty": "0",
        "leavesValue": "0",
        "cumExecQty": cum_exec_qty,
        "cumExecValue": cum_exec_value,
        "cumExecFee": cum_exec_fee,
        "timeInForce": time_in_force,
        "orderType": order_type,
        "stopOrderType": "",
        "orderIv": "",
        "marketUnit": "",
        "triggerPrice": "",
        "takeProfit": "",
        "stopLoss": "",
        "tpslMode": "",
        "ocoTriggerBy": "",
        "tpLimitPrice": "",
        "slLimitPrice": "",
        "tpTriggerBy": "",
        "slTriggerBy": "",
        "triggerDirection": 0,
        "triggerBy": "",
        "lastPriceOnCreated": "",
        "reduceOnly": reduce_only,
        "closeOnTrigger": create_type == "CreateByLiq",
        "placeType": "",
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "createdTime": created_time,
        "updatedTime": created_time,
    }


def api_key_row(
    *,
    key_id: str,
    api_key: str,
    user_id: int,
    note: str,
    read_only: bool,
    contract_trade: list[str],
    wallet: list[str],
) -> dict[str, Any]:
    """The result of `/v5/user/query-api`: the key's rights by product. `uta == 1` is
    what ccxt's is_unified_enabled looks at."""
    return {
        "id": key_id,
        "note": note,
        "apiKey": api_key,
        "readOnly": 1 if read_only else 0,
        "secret": "",
        "permissions": {
            "ContractTrade": contract_trade,
            "Spot": [],
            "Wallet": wallet,
            "Options": [],
            "Derivatives": [],
            "CopyTrading": [],
            "BlockTrade": [],
            "Exchange": [],
            "NFT": [],
            "Affiliate": [],
        },
        "ips": ["*"],
        "type": 1,
        "deadlineDay": -1,
        "expiredAt": "",
        "createdAt": "2025-01-01T00:00:00Z",
        "unified": 0,
        "uta": 1,
        "userID": user_id,
        "inviterID": 0,
        "vipLevel": "No VIP",
        "mktMakerLevel": "0",
        "affiliateID": 0,
        "rsaPublicKey": "",
        "isMaster": True,
        "parentUid": "0",
        "kycLevel": "LEVEL_DEFAULT",
        "kycRegion": "",
    }


def new_transfer_id(params: dict[str, Any], used: Any) -> str:
    """The caller's `transferId` of an inter-transfer: a UUID (131203 otherwise) not used
    before (131214 "TransferId exist": a second request with the same id moves nothing)."""
    transfer_id = str(params.get("transferId") or "")
    try:
        uuid.UUID(transfer_id)
    except ValueError:
        raise BybitError(131203, "Request parameter error: transferId must be a UUID") from None
    if transfer_id in used:
        raise BybitError(131214, "TransferId exist")
    return transfer_id


def transfer_row(
    *,
    transfer_id: str,
    coin: str,
    amount: str,
    from_account_type: str,
    to_account_type: str,
    timestamp: str,
) -> dict[str, Any]:
    """One row of `/v5/asset/transfer/query-inter-transfer-list`."""
    return {
        "transferId": transfer_id,
        "coin": coin,
        "amount": amount,
        "fromAccountType": from_account_type,
        "toAccountType": to_account_type,
        "timestamp": timestamp,
        "status": "SUCCESS",
    }


def fund_coins_balance(params: dict[str, Any], balances: dict[str, str]) -> dict[str, Any]:
    """`query-account-coins-balance?accountType=FUND`: the reserve outside the UTA, from
    each coin's balance as wire text; `coin` may name several, comma-separated."""
    if params.get("accountType") != "FUND":
        raise BybitError(131203, "Request parameter error: only accountType FUND is served")
    wanted = set(str(params["coin"]).split(",")) if params.get("coin") else None
    rows = [
        {"coin": coin, "walletBalance": amount, "transferBalance": amount, "bonus": "0"}
        for coin, amount in balances.items()
        if wanted is None or coin in wanted
    ]
    return {"accountType": "FUND", "bizType": 1, "accountId": "", "memberId": "", "balance": rows}
