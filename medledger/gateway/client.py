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
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from eth_account import Account
from eth_utils import keccak

from ..errors import FhirInvalid, GatewayClientError, GatewayUnreachable, MedLedgerError
from ..merkle import verify as merkle_verify
from .auth import signed_request_header, siwe_message

#: A create is sent again this many times when no answer came (with the same Idempotency-Key: never twice).
CREATE_RETRIES = 2
#: Seconds before the first retry of a create (doubled at each further one).
RETRY_BACKOFF = 1.0

__all__ = ["GatewayClient", "GatewayClientError", "GatewayUnreachable", "Released", "check_proof", "proof_problem"]


@dataclass(frozen=True)
class Released:
    """A record as a gateway released it: the FHIR JSON (its bytes as served, and parsed) and the sequence
    numbers of the audit entries the gateway committed before answering (``X-MedLedger-Audit``)."""

    document: dict[str, Any]
    body: bytes
    audit_seqs: tuple[int, ...]


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

    @classmethod
    def connect(cls, base_url: str, signer: Any, chain_id: int, *, timeout: float = 30.0,
                http: httpx.Client | None = None) -> GatewayClient:
        """A signed-in client (SIWE), once the gateway has answered `/healthz` for chain `chain_id`: the one way
        the CLI (`App.gateway`), federation and the web app's back end open a session. `GatewayUnreachable`
        when nothing answers or it is not a gateway; a `GatewayClientError` with status 421 for another chain."""
        client = cls(base_url, signer, chain_id, timeout=timeout, http=http)
        served = int(client.health()["chainId"])
        if served != chain_id:
            raise GatewayClientError(f"the gateway at {client.base_url} serves chain {served}, not chain {chain_id}",
                                     421)
        client.login()
        return client

    # ------------------------------------------------------------------ auth
    def _sign_hash(self, digest: bytes) -> bytes:
        key = getattr(self.signer, "private_key", None)
        if key is None:
            raise MedLedgerError("this signer cannot sign raw digests; use a keystore or env: account")
        return bytes(Account.unsafe_sign_hash(digest, key).signature)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One HTTP exchange. Every httpx failure (refused, timed out, a broken or undecodable answer, too many
        redirects) is a `GatewayUnreachable` naming the URL: callers handle the domain error only."""
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise GatewayUnreachable(f"no gateway answers at {self.base_url} ({_transport_reason(exc)})") from None

    def health(self) -> dict[str, Any]:
        """``GET /healthz`` (no sign-in): chain id, custodian, batch interval, pending audit entries."""
        response = self._send("GET", "/healthz")
        try:
            body = response.json()
            body["chainId"], body["custodian"]  # noqa: B018 - what makes it a MedLedger gateway
        except (ValueError, KeyError, TypeError):
            raise GatewayUnreachable(f"{self.base_url} is not a MedLedger gateway (GET /healthz answered "
                                     f"{response.status_code})") from None
        return body

    def login(self, ttl: float = 600.0) -> str:
        nonce = self._check(self._send("GET", "/auth/nonce")).json()["nonce"]
        message = siwe_message(self.signer.address, self.base_url, self.chain_id, nonce, ttl)
        signature = self.signer.sign_message(None, message.encode())
        session = self._check(self._send("POST", "/auth/siwe", json={"message": message,
                                                                     "signature": "0x" + bytes(signature).hex()}))
        self.token = session.json()["token"]
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
        return self._send(method, path, content=body or None, headers=headers)

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            raise GatewayClientError(_describe(response), response.status_code)
        return response

    # ------------------------------------------------------------------ records
    def put_record(self, doc: dict[str, Any], patient: str, *, idempotency_key: str | None = None,
                   conditional: bool = False, retries: int = CREATE_RETRIES) -> dict[str, Any]:
        """Create a record; safe to retry. Every call sends an ``Idempotency-Key`` (``idempotency_key``, else a
        fresh one) and, when no answer comes (a timeout, a dropped connection, a restarting gateway) or the
        gateway says the same create is still under way (409), sends the same request again up to ``retries``
        times: the gateway answers the record the first attempt made, never a second one. With ``conditional``,
        also FHIR conditional create on the Bundle's ``identifier`` (``If-None-Exist``): a record you created for
        the patient with that identifier is answered instead. The answer's ``replayed`` says whether the record
        existed already."""
        rtype = doc.get("resourceType", "Bundle")
        headers = {"If-None-Exist": identifier_query(doc)} if conditional else {}
        response = self._post_once(f"/fhir/{rtype}?patient={patient}", json.dumps(doc).encode(), headers,
                                   idempotency_key, retries)
        return {**response.json(), "replayed": response.status_code == 200}

    def _post_once(self, path: str, body: bytes, headers: dict[str, str], idempotency_key: str | None,
                   retries: int) -> httpx.Response:
        """POST with an ``Idempotency-Key`` (``idempotency_key``, else a fresh one), sent again with the same key
        when no answer comes or the gateway says the first is still being written (409), up to ``retries`` times."""
        headers = {"Content-Type": "application/fhir+json", **headers,
                   "Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        for attempt in range(retries + 1):
            try:
                response = self.request("POST", path, body=body, headers=headers)
            except GatewayUnreachable:
                if attempt == retries:
                    raise
            else:
                if response.status_code != 409 or attempt == retries or "still being written" not in response.text:
                    return self._check(response)
            time.sleep(RETRY_BACKOFF * 2 ** attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def put_batch(self, records: Sequence[tuple[dict[str, Any], str]], *, idempotency_key: str | None = None,
                  retries: int = CREATE_RETRIES) -> dict[str, Any]:
        """Create many records as ONE Merkle batch (``POST [base]`` with a FHIR ``batch`` Bundle): ``records``
        are (document, patient address). All or nothing: a bad entry refuses the whole batch, naming it. Safe to
        retry, as `put_record`: an ``Idempotency-Key`` is always sent, and a batch that got no answer is sent
        again with it. Returns ``{"batchId", "root", "manifestHash", "tx", "block", "recordIds"}`` (record ids
        in ``records``' order)."""
        bundle = {"resourceType": "Bundle", "type": "batch",
                  "entry": [{"request": {"method": "POST",
                                         "url": f"{doc.get('resourceType', 'Bundle')}?patient={patient}"},
                             "resource": doc} for doc, patient in records]}
        answer = self._post_once("/fhir", json.dumps(bundle).encode(), {}, idempotency_key, retries).json()
        batch = {e["url"]: next(v for k, v in e.items() if k.startswith("value"))
                 for ext in answer.get("extension", []) for e in ext.get("extension", [])}
        ids = ["0x" + e["response"]["location"].split("/")[1] for e in answer.get("entry", [])]
        return {"batchId": batch.get("batchId"), "root": batch.get("root"), "manifestHash": batch.get("manifestHash"),
                "tx": batch.get("tx"), "block": int(batch.get("block", 0)), "recordIds": ids}

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

    def history(self, record_id: str, purpose: str = "TREAT") -> Released:
        """A record's versions (FHIR ``history`` Bundle, newest first) as far as the caller may see them; each
        version returned is an audited read (``audit_seqs``, one per version)."""
        rid = record_id.removeprefix("0x")
        response = self._check(self.request("GET", f"/fhir/Bundle/{rid}/_history",
                                            headers={"X-Purpose-Of-Use": purpose}))
        return _released(response)

    def read(self, record_id: str, purpose: str = "TREAT") -> Released:
        """The latest version of a record, minus what the caller may not see, with its audit entries."""
        rid = record_id.removeprefix("0x")
        response = self._check(self.request("GET", f"/fhir/Bundle/{rid}", headers={"X-Purpose-Of-Use": purpose}))
        return _released(response)

    def get_record(self, record_id: str, purpose: str = "TREAT") -> dict[str, Any]:
        return self.read(record_id, purpose).document

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
    def audit(self, patient: str | None = None, before: int | None = None) -> list[dict[str, Any]]:
        """One page of audit entries, newest first (`before`: only entries with a smaller sequence number)."""
        query = "&".join(q for q in (f"patient={patient}" if patient else "", f"before={before}" if before else "")
                         if q)
        return self._check(self.get("/audit" + (f"?{query}" if query else ""))).json()["entries"]

    def audit_entries(self, patient: str | None = None) -> Iterator[dict[str, Any]]:
        """Every audit entry the caller may see (all pages), newest first."""
        before: int | None = None
        while True:
            page = self.audit(patient, before)
            if not page:
                return
            yield from page
            before = min(int(e["seq"]) for e in page)

    def audit_proof(self, seq: int) -> dict[str, Any]:
        return self._check(self.get(f"/audit/{seq}/proof")).json()


def identifier_query(doc: dict[str, Any]) -> str:
    """The ``If-None-Exist`` search of a Bundle's ``identifier``: ``identifier=system|value``."""
    ident = doc.get("identifier")
    if isinstance(ident, list):  # resources other than Bundle hold a list
        ident = ident[0] if ident else None
    if not isinstance(ident, dict) or not isinstance(ident.get("value"), str) or not ident["value"]:
        raise FhirInvalid("a conditional create needs the document's identifier (with a value) to look for")
    return f"identifier={ident.get('system', '')}|{ident['value']}"


def _released(response: httpx.Response) -> Released:
    seqs = response.headers.get("x-medledger-audit", "")
    return Released(response.json(), response.content, tuple(int(s) for s in seqs.split(",") if s.strip()))


def _transport_reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unknown"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return type(exc).__name__


def proof_problem(proof: dict[str, Any], records: Any | None = None) -> str | None:
    """Why an audit proof does not hold, as a sentence, or None if it holds: the entry's AuditEvent hashes to
    the leaf's event hash, the leaf leads through the proof to the root, and (given a `RecordRegistry` wrapper)
    the chain holds that root as the gateway's access-log batch of that many entries."""
    from .. import fhir
    from ..contracts import BatchKind, batch_id_of

    if not proof.get("anchored"):
        return "not anchored on chain yet"
    try:
        leaf = [bytes.fromhex(v[2:]) if isinstance(v, str) and v.startswith("0x") and len(v) == 66 else v
                for v in proof["leaf"]]
        if int(leaf[0]) != int(proof["seq"]):
            return f"the proof is for entry {leaf[0]}, not {proof['seq']}"
        if "event" in proof and keccak(fhir.canonicalize(proof["event"])) != leaf[-1]:
            return "the AuditEvent does not hash to the event hash in the entry's leaf"
        if not merkle_verify(proof["root"], leaf, proof["proof"], proof["leafEncoding"]):
            return f"the Merkle proof does not lead from the entry's leaf to the root {proof['root']}"
        if records is None:
            return None
        info = records.batch_of(batch_id_of(proof["gateway"], bytes.fromhex(proof["root"][2:])))
    except (KeyError, IndexError, TypeError, ValueError, FhirInvalid) as exc:
        return f"the proof is malformed ({type(exc).__name__}: {exc})"
    if info.kind != BatchKind.ACCESS_LOG:
        return f"the root {proof['root']} is not an access-log batch of {proof['gateway']} on chain"
    if info.count != proof["batchCount"]:
        return f"the chain's batch holds {info.count} entries, the gateway says {proof['batchCount']}"
    return None


def check_proof(proof: dict[str, Any], records: Any | None = None) -> bool:
    """Whether an audit proof holds (see `proof_problem`)."""
    return proof_problem(proof, records) is None
