"""Who signed a Hyperliquid `/exchange` request: EIP-712 digests and signer recovery.

Why a module of its own: the test server must refuse an action signed by the wrong wallet
(an agent wallet may trade and move isolated margin, never move USDC between spot and
perp), so it recovers the signing address from the signature the way Hyperliquid does.
Built from Hyperliquid's docs ("Signing", exchange endpoint) and EIP-712, independently of
ccxt's signing code: only the primitives are shared (Keccak-256 and msgpack from ccxt's
bundled static dependencies, secp256k1 recovery from coincurve, which ccxt installs).

- L1 actions (order, cancel, updateIsolatedMargin, ...): connectionId = keccak(msgpack(action)
  || nonce as 8 bytes big-endian || 0x00, or 0x01 || vault address || [0x00 || expiresAfter
  as 8 bytes]); the signed struct is `Agent(string source,bytes32 connectionId)` with source
  "a" on mainnet, "b" on testnet, under the domain ("Exchange", "1", 1337, 0x0...0).
- User-signed actions (usdClassTransfer, approveBuilderFee, ...): the action's own fields
  as `HyperliquidTransaction:<Name>(...)` under ("HyperliquidSignTransaction", "1",
  int(signatureChainId), 0x0...0).
"""

from __future__ import annotations

from typing import Any

import coincurve
from ccxt.static_dependencies.keccak import SHA3
from ccxt.static_dependencies.msgpack import packb

ZERO_ADDRESS = "0x" + "0" * 40
L1_CHAIN_ID = 1337

#: Field lists of the user-signed actions this server accepts (Hyperliquid docs).
USER_SIGNED_TYPES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "usdClassTransfer": (
        "HyperliquidTransaction:UsdClassTransfer",
        (("hyperliquidChain", "string"), ("amount", "string"), ("toPerp", "bool"),
         ("nonce", "uint64")),
    ),
    "approveBuilderFee": (
        "HyperliquidTransaction:ApproveBuilderFee",
        (("hyperliquidChain", "string"), ("maxFeeRate", "string"), ("builder", "address"),
         ("nonce", "uint64")),
    ),
}  # fmt: skip


def keccak(data: bytes) -> bytes:
    return bytes(SHA3(data))


def _word(kind: str, value: Any) -> bytes:
    """One EIP-712 encoded member (32 bytes)."""
    if kind == "string":
        return keccak(str(value).encode())
    if kind == "bytes32":
        return bytes(value)
    if kind == "address":
        return bytes(12) + bytes.fromhex(str(value).removeprefix("0x"))
    if kind == "bool":
        return int(bool(value)).to_bytes(32, "big")
    return int(value).to_bytes(32, "big")  # uint64, uint256


def _struct_hash(name: str, fields: tuple[tuple[str, str], ...], values: dict[str, Any]) -> bytes:
    signature = f"{name}({','.join(f'{kind} {field}' for field, kind in fields)})"
    encoded = b"".join(_word(kind, values[field]) for field, kind in fields)
    return keccak(keccak(signature.encode()) + encoded)


def _digest(domain_name: str, chain_id: int, struct_hash: bytes) -> bytes:
    domain = _struct_hash(
        "EIP712Domain",
        (("name", "string"), ("version", "string"), ("chainId", "uint256"),
         ("verifyingContract", "address")),
        {"name": domain_name, "version": "1", "chainId": chain_id,
         "verifyingContract": ZERO_ADDRESS},
    )  # fmt: skip
    return keccak(b"\x19\x01" + domain + struct_hash)


def l1_digest(
    action: dict[str, Any],
    nonce: int,
    *,
    vault_address: str | None,
    expires_after: int | None,
    mainnet: bool,
) -> bytes:
    data = packb(action) + nonce.to_bytes(8, "big")
    if vault_address is None:
        data += b"\x00"
    else:
        data += b"\x01" + bytes.fromhex(vault_address.removeprefix("0x"))
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    agent = {"source": "a" if mainnet else "b", "connectionId": keccak(data)}
    fields = (("source", "string"), ("connectionId", "bytes32"))
    return _digest("Exchange", L1_CHAIN_ID, _struct_hash("Agent", fields, agent))


def user_signed_digest(action: dict[str, Any]) -> bytes:
    name, fields = USER_SIGNED_TYPES[str(action["type"])]
    chain_id = int(str(action["signatureChainId"]), 16)
    return _digest("HyperliquidSignTransaction", chain_id, _struct_hash(name, fields, action))


def address_of(public_key: coincurve.PublicKey) -> str:
    return "0x" + keccak(public_key.format(compressed=False)[1:])[-20:].hex()


def address_of_key(private_key: str) -> str:
    """The wallet address of a hex private key (fixtures derive addresses with it)."""
    return address_of(
        coincurve.PrivateKey(bytes.fromhex(private_key.removeprefix("0x"))).public_key
    )


def recover_signer(digest: bytes, signature: dict[str, Any]) -> str | None:
    """The lower-case address that produced `signature` ({r, s, v}) over `digest`, or None."""
    try:
        r = bytes.fromhex(str(signature["r"]).removeprefix("0x")).rjust(32, b"\0")
        s = bytes.fromhex(str(signature["s"]).removeprefix("0x")).rjust(32, b"\0")
        v = int(signature["v"])
        recovery_id = v - 27 if v >= 27 else v
        public_key = coincurve.PublicKey.from_signature_and_message(
            r + s + bytes([recovery_id]), digest, hasher=None
        )
    except (KeyError, ValueError, TypeError):
        return None
    return address_of(public_key)
