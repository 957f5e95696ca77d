"""The wallets outside futures as Binance reports them: read-only views of the reserve.

Why: `marginwatch snapshot` reads the reserve a defense could transfer in, with the
calls a real key makes, so the simulator answers them too:
- `GET /api/v3/account` (Spot API, "Account information (USER_DATA)"): `balances` is a
  list of `{"asset", "free", "locked"}` decimal strings, beside the account's flags;
- `POST /sapi/v1/asset/get-funding-asset` (Wallet API, "Funding Wallet (USER_DATA)"): a
  list of `{"asset", "free", "locked", "freeze", "withdrawing", "btcValuation"}`, only the
  assets held, narrowed to one with the `asset` parameter.
Nothing is locked in the simulator: a reserve is all free.
"""

from __future__ import annotations

import zlib
from typing import Any

from monitor.simulator.binance_usdm.render import num
from monitor.simulator.binance_usdm.state import SimAccount


def spot_account(account: SimAccount, now_ms: int) -> dict[str, Any]:
    return {
        "makerCommission": 10,
        "takerCommission": 10,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "canTrade": account.can_trade,
        "canWithdraw": account.can_withdraw,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": now_ms,
        "accountType": "SPOT",
        "balances": [
            {"asset": asset, "free": num(amount), "locked": num(0.0)}
            for asset, amount in account.spot.items()
        ],
        "permissions": ["SPOT"],
        "uid": zlib.crc32(account.api_key.encode()),
    }


def funding_assets(account: SimAccount, params: dict[str, str]) -> list[dict[str, Any]]:
    wanted = params.get("asset")
    return [
        {
            "asset": asset,
            "free": num(amount),
            "locked": "0",
            "freeze": "0",
            "withdrawing": "0",
            "btcValuation": "0",
        }
        for asset, amount in account.funding.items()
        if amount > 0 and (wanted is None or asset == wanted)
    ]
