"""Who is calling: Sign-In with Ethereum sessions and EIP-712-signed single requests.

Both are bound to the chain id, the gateway origin, a single-use nonce and an expiry.

* **SIWE (EIP-4361, the ``siwe`` package)**: ``GET /auth/nonce`` issues a nonce (5 minutes, single
  use); ``POST /auth/siwe`` takes the signed message. Its ``domain`` must be the gateway's host, its
  ``uri`` the gateway origin, its ``chain-id`` the gateway's chain, ``expiration-time`` is required.
  The answer is a random bearer token; only its SHA-256 is stored. Sessions last at most
  ``session_ttl`` (15 minutes by default) and ``POST /auth/logout`` revokes one at once.
* **EIP-712 request** (automation, no session): header ``Authorization: MedLedger-EIP712 <base64url JSON>``
  holding the `REQUEST_TYPES` message and its signature: method, path with query, origin, body hash,
  a random nonce, an expiry at most ``request_ttl`` ahead. Each nonce is accepted once per signer.

Signatures: an EOA's ECDSA signature is recovered; otherwise, if the claimed address has code, its
ERC-1271 ``isValidSignature(hash, signature)`` must answer the magic value (Safe and other contract
wallets). siwe-py's own verify raises before its ERC-1271 fallback on non-ECDSA signatures
(siwe-py#79), so the signature check is done here and siwe only parses and checks the fields.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct, encode_typed_data
from eth_utils import is_address, keccak, to_checksum_address
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import MedLedgerError
from . import store as T
from .store import Store

ERC1271_MAGIC = bytes.fromhex("1626ba7e")
ERC1271_ABI = [{"name": "isValidSignature", "type": "function", "stateMutability": "view",
                "inputs": [{"name": "hash", "type": "bytes32"}, {"name": "signature", "type": "bytes"}],
                "outputs": [{"name": "", "type": "bytes4"}]}]

REQUEST_TYPES = {
    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                     {"name": "chainId", "type": "uint256"}],
    "Request": [{"name": "method", "type": "string"}, {"name": "path", "type": "string"},
                {"name": "origin", "type": "string"}, {"name": "bodyHash", "type": "bytes32"},
                {"name": "nonce", "type": "bytes32"}, {"name": "expires", "type": "uint64"},
                {"name": "signer", "type": "address"}],
}
REQUEST_SCHEME = "MedLedger-EIP712"
NONCE_TTL = 300.0
CLOCK_SKEW = 60.0


class AuthError(MedLedgerError):
    """A sign-in or a signed request is refused; the message says why (never which secret was wrong)."""


@dataclass(frozen=True)
class Caller:
    """An authenticated caller."""

    address: str
    via: str  # "session" | "eip712"
    expires_at: float


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def signature_valid(w3: Any, address: str, digest: bytes, signature: bytes) -> bool:
    """ECDSA recovery to ``address``, else ERC-1271 on ``address`` if it is a contract."""
    if len(signature) == 65:
        try:
            if Account._recover_hash(digest, signature=signature) == address:
                return True
        except Exception:  # noqa: BLE001 - malformed r/s/v: not an EOA signature; try ERC-1271
            pass
    try:
        if not w3.eth.get_code(address):
            return False
        answer = w3.eth.contract(address=address, abi=ERC1271_ABI).functions.isValidSignature(
            digest, signature).call()
    except Exception:  # noqa: BLE001 - a reverting or odd wallet simply does not validate
        return False
    return bytes(answer) == ERC1271_MAGIC


def request_typed_data(chain_id: int, message: dict[str, Any]) -> dict[str, Any]:
    return {"types": REQUEST_TYPES, "primaryType": "Request",
            "domain": {"name": "MedLedger Gateway", "version": "1", "chainId": chain_id}, "message": message}


def request_digest(typed: dict[str, Any]) -> bytes:
    signable = encode_typed_data(full_message=typed)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def body_hash(body: bytes) -> str:
    return "0x" + keccak(body).hex()


def _iso(ts: str | None) -> float | None:
    if ts is None:
        return None
    return datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp()


class Authenticator:
    """Issues nonces and sessions, verifies sessions and signed requests."""

    def __init__(self, store: Store, w3: Any, chain_id: int, origin: str, *, session_ttl: float = 900.0,
                 request_ttl: float = 300.0) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise AuthError(f"the gateway origin must be scheme://host[:port], got '{origin}'")
        self.store, self.w3, self.chain_id = store, w3, chain_id
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.domain = parts.netloc
        self.scheme = parts.scheme
        self.session_ttl, self.request_ttl = session_ttl, request_ttl
        # Valid sessions seen by this process (one process per gateway data directory: `sign_out` here is the
        # only way to revoke, and it drops the entry). Expiry is still checked on every request.
        self._sessions: dict[str, Caller] = {}

    # ------------------------------------------------------------------ SIWE
    def new_nonce(self) -> str:
        nonce = secrets.token_hex(16)
        now = time.time()
        with self.store.begin() as conn:
            conn.execute(delete(T.login_nonces).where(T.login_nonces.c.expires_at < now))
            conn.execute(insert(T.login_nonces).values(nonce=nonce, expires_at=now + NONCE_TTL))
        return nonce

    def sign_in(self, message_text: str, signature_hex: str) -> tuple[str, Caller]:
        """Checks a SIWE message and signature; returns (bearer token, caller)."""
        from siwe import SiweMessage

        try:
            message = SiweMessage.from_message(message=message_text)
        except Exception as exc:  # noqa: BLE001 - siwe raises ValueError / pydantic errors on bad text
            raise AuthError(f"not a valid EIP-4361 message ({type(exc).__name__})") from None
        if message.domain != self.domain:
            raise AuthError(f"the message is for domain '{message.domain}', this gateway is '{self.domain}'")
        if message.scheme not in (None, self.scheme):
            raise AuthError(f"the message is for scheme '{message.scheme}', this gateway uses '{self.scheme}'")
        if str(message.uri).rstrip("/") != self.origin:
            raise AuthError(f"the message is for URI '{message.uri}', this gateway is '{self.origin}'")
        if int(message.chain_id) != self.chain_id:
            raise AuthError(f"the message is for chain {message.chain_id}, this gateway serves chain {self.chain_id}")
        now = time.time()
        expires = _iso(message.expiration_time)
        if expires is None:
            raise AuthError("the message has no expiration-time; sessions must expire")
        if expires <= now:
            raise AuthError("the message has expired")
        not_before = _iso(message.not_before)
        if not_before is not None and not_before > now + CLOCK_SKEW:
            raise AuthError("the message is not valid yet")
        issued = _iso(message.issued_at)
        if issued is not None and issued > now + CLOCK_SKEW:
            raise AuthError("the message was issued in the future")
        try:
            signature = bytes.fromhex(signature_hex.removeprefix("0x"))
        except ValueError:
            raise AuthError("the signature is not hex") from None
        digest = _hash_eip191_message(encode_defunct(text=message.prepare_message()))
        address = to_checksum_address(message.address)
        with self.store.begin() as conn:
            used = conn.execute(delete(T.login_nonces).where(T.login_nonces.c.nonce == message.nonce,
                                                             T.login_nonces.c.expires_at >= now))
            if used.rowcount != 1:
                raise AuthError("unknown, used or expired nonce; ask GET /auth/nonce for a new one")
        # the nonce is spent before the signature is checked: a failed attempt cannot be retried
        if not signature_valid(self.w3, address, digest, signature):
            raise AuthError(f"the signature is not {address}'s")
        token = secrets.token_urlsafe(32)
        until = min(expires, now + self.session_ttl)
        with self.store.begin() as conn:
            conn.execute(insert(T.sessions).values(token_hash=hash_token(token), address=address,
                                                   chain_id=self.chain_id, origin=self.origin, created_at=now,
                                                   expires_at=until, revoked=False))
        return token, Caller(address, "session", until)

    def known_session(self, token: str) -> Caller | None:
        """The caller of a live session this process has already checked (no database access), else None
        (then `session` decides)."""
        cached = self._sessions.get(hash_token(token))
        return cached if cached is not None and cached.expires_at > time.time() else None

    def session(self, token: str) -> Caller | None:
        now = time.time()
        key = hash_token(token)
        cached = self._sessions.get(key)
        if cached is not None:
            if cached.expires_at > now:
                return cached
            self._sessions.pop(key, None)
        with self.store.read() as conn:
            row = conn.execute(select(T.sessions).where(T.sessions.c.token_hash == hash_token(token))).first()
        if (row is None or row.revoked or row.expires_at <= now or row.origin != self.origin
                or row.chain_id != self.chain_id):
            return None
        caller = Caller(row.address, "session", row.expires_at)
        if len(self._sessions) > 100_000:
            self._sessions.clear()
        self._sessions[key] = caller
        return caller

    def sign_out(self, token: str) -> bool:
        self._sessions.pop(hash_token(token), None)
        with self.store.begin() as conn:
            done = conn.execute(update(T.sessions).where(T.sessions.c.token_hash == hash_token(token))
                                .values(revoked=True))
        return done.rowcount == 1

    # ------------------------------------------------------------------ EIP-712 requests
    def signed_request(self, credential: str, method: str, path: str, body: bytes) -> Caller:
        """Verifies one EIP-712 signed request (the credential after the scheme name)."""
        try:
            raw = json.loads(base64.urlsafe_b64decode(credential + "=" * (-len(credential) % 4)))
            msg = raw["message"]
            signature = bytes.fromhex(str(raw["signature"]).removeprefix("0x"))
            message = {"method": str(msg["method"]), "path": str(msg["path"]), "origin": str(msg["origin"]),
                       "bodyHash": str(msg["bodyHash"]), "nonce": str(msg["nonce"]), "expires": int(msg["expires"]),
                       "signer": str(msg["signer"])}
            chain_id = int(raw.get("chainId", self.chain_id))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise AuthError("malformed signed request") from None
        if not is_address(message["signer"]):
            raise AuthError("malformed signed request: signer is not an address")
        signer = to_checksum_address(message["signer"])
        if chain_id != self.chain_id:
            raise AuthError(f"the request is signed for chain {chain_id}, this gateway serves chain {self.chain_id}")
        if message["origin"].rstrip("/") != self.origin:
            raise AuthError(f"the request is signed for origin '{message['origin']}', this gateway is '{self.origin}'")
        if message["method"].upper() != method.upper() or message["path"] != path:
            raise AuthError("the signature covers another method or path")
        if message["bodyHash"].lower() != body_hash(body):
            raise AuthError("the signature covers another body")
        now = time.time()
        if message["expires"] <= now:
            raise AuthError("the signed request has expired")
        if message["expires"] > now + self.request_ttl + CLOCK_SKEW:
            raise AuthError(f"the signed request expires too far ahead (at most {self.request_ttl:g} s)")
        message["signer"] = signer
        try:
            digest = request_digest(request_typed_data(self.chain_id, message))
        except Exception:  # noqa: BLE001 - eth-account rejects malformed bytes32 values
            raise AuthError("malformed signed request") from None
        if not signature_valid(self.w3, signer, digest, signature):
            raise AuthError(f"the signature is not {signer}'s")
        try:
            with self.store.begin() as conn:
                conn.execute(delete(T.request_nonces).where(T.request_nonces.c.expires_at < now - CLOCK_SKEW))
                conn.execute(insert(T.request_nonces).values(signer=signer, nonce=message["nonce"].lower(),
                                                             expires_at=float(message["expires"])))
        except IntegrityError:
            raise AuthError("the signed request was already used (replay)") from None
        return Caller(signer, "eip712", float(message["expires"]))


# ---------------------------------------------------------------------- client side


def siwe_message(address: str, origin: str, chain_id: int, nonce: str, ttl: float = 600.0,
                 statement: str = "Sign in to the MedLedger record gateway.") -> str:
    """The EIP-4361 text a party signs to sign in to the gateway at ``origin``."""
    from siwe import SiweMessage

    parts = urlsplit(origin)
    now = datetime.now(timezone.utc)
    expires = datetime.fromtimestamp(now.timestamp() + ttl, timezone.utc)

    def iso(d: datetime) -> str:
        return d.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    return SiweMessage(domain=parts.netloc, address=to_checksum_address(address), uri=f"{parts.scheme}://{parts.netloc}",
                       version="1", chain_id=chain_id, issued_at=iso(now), nonce=nonce, statement=statement,
                       expiration_time=iso(expires)).prepare_message()


def signed_request_header(sign_hash: Any, signer: str, chain_id: int, origin: str, method: str, path: str,
                          body: bytes = b"", ttl: float = 120.0) -> str:
    """The ``Authorization`` value of one EIP-712 signed request; ``sign_hash(digest) -> signature``."""
    message = {"method": method.upper(), "path": path, "origin": origin.rstrip("/"), "bodyHash": body_hash(body),
               "nonce": "0x" + secrets.token_hex(32), "expires": int(time.time() + ttl),
               "signer": to_checksum_address(signer)}
    signature = sign_hash(request_digest(request_typed_data(chain_id, message)))
    raw = json.dumps({"chainId": chain_id, "message": message, "signature": "0x" + bytes(signature).hex()})
    return f"{REQUEST_SCHEME} " + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
