"""The SDK client of a record gateway: sign in with the party's own key, then get, put, search, explain
and fetch audit proofs. The CLI and the (future) web app use this; nothing is written twice.

    client = GatewayClient("https://records.clinic.example", signer, chain_id)
    client.login()                       # SIWE: nonce -> signed EIP-4361 message -> bearer session
    doc = client.get_record(record_id)   # minimum necessary: only the classes you may see
    proof = client.audit_proof(seq)      # Merkle inclusion proof of an audit entry

Without `login`, each request is signed on its own (EIP-712, ``signed=True``).
"""
from __future__ import annotations

import json
from typing import Any

import httpx
from eth_account import Account

from ..errors import MedLedgerError
from ..merkle import verify as merkle_verify
from .auth import signed_request_header, siwe_message


class GatewayClientError(MedLedgerError):
    """The gateway refused a request; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _describe(response: httpx.Response) -> str:
    if response.status_code == 401:
        www = response.headers.get("www-authenticate", "")
        reason = www.split('error_description="', 1)[1].rstrip('"') if 'error_description="' in www else ""
        return f"not signed in: {reason}" if reason else "not signed in"
    if response.status_code == 404:
        return "not found (no such record, or not yours to know)"
    if response.status_code == 413:
        return "the body is too large for this gateway"
    try:
        body = response.json()
        issues = body.get("issue", [])
        return "; ".join(i.get("diagnostics", "") for i in issues) or json.dumps(body)[:300]
    except ValueError:
        return response.text[:300] or response.reason_phrase


class GatewayClient:
    """One party talking to one gateway."""

    def __init__(self, base_url: str, signer: Any, chain_id: int, *, timeout: float = 30.0,
                 http: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self.chain_id = chain_id
        self.http = http or httpx.Client(base_url=self.base_url, timeout=timeout)
        self.token: str | None = None

    # ------------------------------------------------------------------ auth
    def _sign_hash(self, digest: bytes) -> bytes:
        key = getattr(self.signer, "private_key", None)
        if key is None:
            raise MedLedgerError("this signer cannot sign raw digests; use a keystore or env: account")
        return bytes(Account.unsafe_sign_hash(digest, key).signature)

    def login(self, ttl: float = 600.0) -> str:
        nonce = self._check(self.http.get("/auth/nonce")).json()["nonce"]
        message = siwe_message(self.signer.address, self.base_url, self.chain_id, nonce, ttl)
        signature = self.signer.sign_message(None, message.encode())
        session = self._check(self.http.post("/auth/siwe", json={"message": message,
                                                                 "signature": "0x" + bytes(signature).hex()})).json()
        self.token = session["token"]
        return self.token

    def logout(self) -> None:
        if self.token:
            self._check(self.request("POST", "/auth/logout"))
            self.token = None

    def request(self, method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None,
                signed: bool | None = None) -> httpx.Response:
        headers = dict(headers or {})
        if signed or (signed is None and self.token is None):
            headers["Authorization"] = signed_request_header(self._sign_hash, self.signer.address, self.chain_id,
                                                             self.base_url, method, path, body)
        elif self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.http.request(method, path, content=body or None, headers=headers)

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            raise GatewayClientError(_describe(response), response.status_code)
        return response

    # ------------------------------------------------------------------ records
    def put_record(self, doc: dict[str, Any], patient: str) -> dict[str, Any]:
        rtype = doc.get("resourceType", "Bundle")
        body = json.dumps(doc).encode()
        return self._check(self.request("POST", f"/fhir/{rtype}?patient={patient}", body=body,
                                        headers={"Content-Type": "application/fhir+json"})).json()

    def update_record(self, record_id: str, doc: dict[str, Any], if_match: int | None = None) -> dict[str, Any]:
        """Amend a record you authored: `doc` becomes its next version (``if_match``: the version you read)."""
        headers = {"Content-Type": "application/fhir+json"}
        if if_match is not None:
            headers["If-Match"] = f'W/"{if_match}"'
        return self._check(self.request("PUT", f"/fhir/Bundle/{record_id.removeprefix('0x')}",
                                        body=json.dumps(doc).encode(), headers=headers)).json()

    def get_version(self, record_id: str, version: int, purpose: str = "TREAT") -> dict[str, Any]:
        """One version of a record (FHIR ``vread``)."""
        return self._check(self.request("GET", f"/fhir/Bundle/{record_id.removeprefix('0x')}/_history/{version}",
                                        headers={"X-Purpose-Of-Use": purpose})).json()

    def get_record(self, record_id: str, purpose: str = "TREAT") -> dict[str, Any]:
        rid = record_id.removeprefix("0x")
        return self._check(self.request("GET", f"/fhir/Bundle/{rid}",
                                        headers={"X-Purpose-Of-Use": purpose})).json()

    def get(self, path: str, purpose: str = "TREAT") -> httpx.Response:
        return self.request("GET", path, headers={"X-Purpose-Of-Use": purpose})

    def search(self, rtype: str, patient: str, purpose: str = "TREAT", last_updated: str | None = None) -> dict:
        query = f"patient={patient}" + (f"&_lastUpdated={last_updated}" if last_updated else "")
        return self._check(self.get(f"/fhir/{rtype}?{query}", purpose)).json()

    def list_records(self, patient: str, purpose: str = "TREAT") -> list[dict[str, Any]]:
        found = self.search("Bundle", patient, purpose)
        return [{"id": e["fullUrl"].rsplit("/", 1)[-1], "versionId": e["resource"].get("meta", {}).get("versionId"),
                 "lastUpdated": e["resource"].get("meta", {}).get("lastUpdated"),
                 "resources": len(e["resource"].get("entry", []))} for e in found.get("entry", [])]

    def explain(self, record_id: str, purpose: str = "TREAT") -> dict[str, Any]:
        return self._check(self.get(f"/fhir/Bundle/{record_id.removeprefix('0x')}/$explain-access", purpose)).json()

    # ------------------------------------------------------------------ audit
    def audit(self, patient: str | None = None) -> list[dict[str, Any]]:
        path = "/audit" + (f"?patient={patient}" if patient else "")
        return self._check(self.get(path)).json()["entries"]

    def audit_proof(self, seq: int) -> dict[str, Any]:
        return self._check(self.get(f"/audit/{seq}/proof")).json()


def check_proof(proof: dict[str, Any], records: Any | None = None) -> bool:
    """Whether an audit proof is consistent: the leaf hashes to the root through the proof, and (given a
    `RecordRegistry` wrapper) the chain holds that root as the gateway's access-log batch."""
    from ..contracts import BatchKind, batch_id_of

    if not proof.get("anchored"):
        return False
    leaf = [bytes.fromhex(v[2:]) if isinstance(v, str) and v.startswith("0x") and len(v) == 66 else v
            for v in proof["leaf"]]
    if not merkle_verify(proof["root"], leaf, proof["proof"], proof["leafEncoding"]):
        return False
    if records is None:
        return True
    info = records.batch_of(batch_id_of(proof["gateway"], bytes.fromhex(proof["root"][2:])))
    return info.kind == BatchKind.ACCESS_LOG and info.count == proof["batchCount"]
