"""Binance's error envelope: `{"code": -NNNN, "msg": "..."}` with the HTTP status Binance uses.

ccxt maps errors by `code` (and a few by `msg`), so codes and messages are copied from
Binance's documentation verbatim. Over loopback ccxt only applies its *common* code map
(its linear-only map is keyed by the fapi.binance.com host), so e.g. -2022 surfaces as a
plain ccxt.ExchangeError there; the wire is still exactly Binance's.
"""

from __future__ import annotations


class BinanceApiError(Exception):
    """Raised anywhere in the simulator; the REST layer turns it into Binance's error JSON."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, int | str]:
        return {"code": self.code, "msg": self.msg}


def invalid_path(path: str, method: str) -> BinanceApiError:
    return BinanceApiError(-5000, f"Path {path}, Method {method} is invalid", status=404)


def api_key_format_invalid() -> BinanceApiError:
    return BinanceApiError(-2014, "API-key format invalid.", status=401)


def invalid_api_key() -> BinanceApiError:
    return BinanceApiError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)


def mandatory_param(name: str) -> BinanceApiError:
    return BinanceApiError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def either_param(first: str, second: str) -> BinanceApiError:
    return BinanceApiError(
        -1102, f"Param '{first}' or '{second}' must be sent, but both were empty/null!"
    )


def invalid_param(name: str) -> BinanceApiError:
    return BinanceApiError(-1130, f"Data sent for parameter '{name}' is not valid.")


def timestamp_ahead() -> BinanceApiError:
    return BinanceApiError(
        -1021, "Timestamp for this request was 1000ms ahead of the server's time."
    )


def timestamp_outside_window() -> BinanceApiError:
    return BinanceApiError(-1021, "Timestamp for this request is outside of the recvWindow.")


def bad_signature() -> BinanceApiError:
    return BinanceApiError(-1022, "Signature for this request is not valid.")


def invalid_symbol() -> BinanceApiError:
    return BinanceApiError(-1121, "Invalid symbol.")


def order_does_not_exist() -> BinanceApiError:
    return BinanceApiError(-2013, "Order does not exist.")


def reduce_only_rejected() -> BinanceApiError:
    return BinanceApiError(-2022, "ReduceOnly Order is rejected.")


def margin_insufficient() -> BinanceApiError:
    return BinanceApiError(-2019, "Margin is insufficient.")
