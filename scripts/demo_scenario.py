"""The end-to-end MedLedger story, driven through the real `medledger` CLI in-process (click's
`CliRunner` on the public `medledger.cli.cli` group), one wallet per party. `scripts/demo.py` (and so
`make demo`) runs it on a local Ganache; the no-PHI test runs it too and then scans the chain.

It lives beside its brownie script, not in the `medledger` package: a demo is not part of the product.

Personas (labels stay off chain; on chain they are addresses) are names for the kit's actors
(`medledger.testing.ACTORS`): Governance (admin), Acme Health (insurer), Riverside Clinic and
Northside Lab (providers), Alice, Bob and Carol (patients; Carol is a minor), Dana (Carol's
guardian), Dr. Reyes (arbiter), and a public relayer.

Patients act with `--pairwise` (docs/PRIVACY.md): each has one pseudonym per provider and per insurer,
derived from her wallet; the pseudonyms sign consents and a grantee or the relayer sends them, so the
patients' wallets never reach the chain (the observer test in tests/test_no_phi.py checks it). Coverage and
claims name the member pseudonym (the one for Acme), under which Riverside files the visits it bills.

Governance runs through a 2-of-3 Safe (1.4.1) owned by Priya, Omar and Lena: right after the deployment the
deployer hands governance over and renounces every role: the Safe becomes registrar and pauser, and a
TimelockController whose proposer is the Safe becomes governor and admin (separated powers, docs/OPERATIONS.md).
From then on every governance transaction is proposed by one owner (`medledger --safe`), confirmed by a second
and executed; the governed ones (registering Dr. Reyes, assigning him to Acme) are Safe proposals to schedule
them in the timelock, executed by anyone once the chain's clock is advanced over the delay.

Step 7 starts real record gateways (`medledger gateway serve --publish`, Riverside's and Northside's, as child
processes on free loopback ports, with the kit's launcher `medledger.testing.gateway.GatewayProcess`), has Alice
fetch her history across both (`record history`), and brings the event index (SQLite under the workdir) up to
date; the gateways are stopped when the step ends, even on failure.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from eth_utils import keccak
from rich.console import Console
from rich.table import Table

from medledger.cli import cli
from medledger.errors import MedLedgerError, Proposed
from medledger.pseudonyms import PatientIdentity, Relationship
from medledger.scopes import DataClass, Purpose
from medledger.testing import ACTORS, dev_account, dev_private_key, synthetic
from medledger.testing.gateway import GatewayProcess

#: Persona -> the kit actor it plays.
PERSONAS: dict[str, str] = {
    "governance": "admin", "acme": "insurer", "riverside": "provider", "northside": "provider2",
    "alice": "patient", "bob": "patient2", "carol": "patient3", "dana": "guardian", "reyes": "arbiter",
    "relay": "relayer", "priya": "owner1", "omar": "owner2", "lena": "owner3",
}
LABELS = {
    "governance": "Governance", "acme": "Acme Health (insurer)", "riverside": "Riverside Clinic (provider)",
    "northside": "Northside Lab (provider)", "alice": "Alice (patient)", "bob": "Bob (patient)",
    "carol": "Carol (patient, minor)", "dana": "Dana (Carol's guardian)", "reyes": "Dr. Reyes (arbiter)",
    "relay": "a public relayer", "priya": "Priya (Safe owner)", "omar": "Omar (Safe owner)",
    "lena": "Lena (Safe owner)",
}
PATIENTS = ("alice", "bob", "carol")
DAY = 86400
#: The governance timelock's delay in the demo (2 days is the default on real networks).
TIMELOCK_DELAY = 3600


def persona_index(name: str) -> int:
    """The development account index a persona signs with."""
    return ACTORS[PERSONAS[name]]


@dataclass
class DemoResult:
    """What the scenario did: addresses, gas per operation, the FHIR documents it used."""

    addresses: dict[str, str]
    contracts: dict[str, str] = field(default_factory=dict)
    gas: list[tuple[str, int]] = field(default_factory=list)
    documents: list[dict] = field(default_factory=list)
    audit: list[dict] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    rpc_url: str = ""
    workdir: Path | None = None
    gateway: dict[str, Any] = field(default_factory=dict)
    index: dict[str, Any] = field(default_factory=dict)
    safe: dict[str, Any] = field(default_factory=dict)  # address, owners, threshold, executed governance txs
    #: (patient, counterparty) -> the patient's pairwise pseudonym for that relationship
    pseudonyms: dict[tuple[str, str], str] = field(default_factory=dict)


class Scenario:
    """Runs CLI commands as named actors and keeps the receipts' gas."""

    def __init__(self, rpc_url: str, workdir: Path, console: Console, batch_size: int = 1000) -> None:
        self.rpc_url, self.workdir, self.console, self.batch_size = rpc_url, workdir, console, batch_size
        self.result = DemoResult({name: dev_account(persona_index(name)).address for name in PERSONAS},
                                 rpc_url=rpc_url, workdir=workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        (workdir / "fhir").mkdir(parents=True)
        self.env = {
            "MEDLEDGER_HOME": str(workdir), "MEDLEDGER_VAULT": str(workdir / "vault"),
            "MEDLEDGER_KEYSTORE_DIR": str(workdir / "keystore"),
            "MEDLEDGER_DEPLOYMENTS": str(workdir / "deployments.json"),
            # Patients act through pairwise pseudonyms (docs/PRIVACY.md): their wallets never reach the chain.
            "MEDLEDGER_PAIRWISE": "1",
        }
        # Each party's key reaches the CLI through an environment variable (`--account env:VAR`), the
        # signer source meant for automation; nothing is written to disk in plaintext.
        for name in PERSONAS:
            self.env[f"MEDLEDGER_DEMO_KEY_{name.upper()}"] = dev_private_key(persona_index(name))
        self.runner = CliRunner(env=self.env)
        self.last_relay: dict[str, Any] = {}

    def address(self, name: str) -> str:
        return self.result.addresses[name]

    def pseudonym(self, patient: str, counterparty: str) -> str:
        """`patient`'s pairwise pseudonym for `counterparty`, as the patient's own CLI derives it."""
        key = (patient, counterparty)
        if key not in self.result.pseudonyms:
            self.result.pseudonyms[key] = self.run(patient, "patient", "pseudonym",
                                                   self.address(counterparty))["pseudonym"]
        return self.result.pseudonyms[key]

    def signed_consent(self, patient: str, grantee: str, *scope: str, relayer: str | None = None,
                       billed_to: str | None = None, label: str = "consent.grantBySig") -> str:
        """The patient's pseudonym (for `grantee`, or for insurer `billed_to`) signs a consent off-chain and
        `relayer` (default: the grantee) relays it and pays the gas; returns the pseudonym."""
        name = f"{patient}-{grantee}" + (f"-billed-to-{billed_to}" if billed_to else "") + \
            ("-revoke" if "--revoke" in scope else "") + ".json"
        path = self.workdir / "signed" / name
        path.parent.mkdir(exist_ok=True)
        path.unlink(missing_ok=True)
        extra = ("--billed-to", self.address(billed_to)) if billed_to else ()
        out = self.run(patient, "consent", "sign", self.address(grantee), *scope, *extra, "-o", str(path))
        self.result.pseudonyms[(patient, billed_to or grantee)] = out["patient"]
        self.last_relay = self.run(relayer or grantee, "consent", "relay", str(path), label=label)
        return out["patient"]

    def run(self, actor: str | None, *args: str, label: str | None = None) -> Any:
        """`medledger --json [--account env:KEY] ARGS` in-process; returns the parsed JSON output.
        A refusal (a `MedLedgerError`) propagates to the caller."""
        argv = ["--rpc", self.rpc_url, "--json"]
        if actor:
            argv += ["--account", f"env:MEDLEDGER_DEMO_KEY_{actor.upper()}"]
        outcome = self.runner.invoke(cli, [*argv, *args], prog_name="medledger", standalone_mode=False,
                                     catch_exceptions=False)
        text = outcome.stdout.strip()
        data = json.loads(text) if text else None
        if label and isinstance(data, dict) and "gas_used" in data:
            self.result.gas.append((label, int(data["gas_used"])))
        return data

    def say(self, actor: str | None, text: str) -> None:
        who = f"[bold cyan]{LABELS[actor]}[/bold cyan]: " if actor else ""
        self.console.print(f"  {who}{text}")

    def step(self, title: str) -> None:
        self.console.rule(f"[bold]{title}")

    def refused(self, actor: str, *args: str) -> str:
        """Runs a command that must be refused; returns the one-line reason."""
        try:
            self.run(actor, *args)
        except MedLedgerError as exc:
            self.result.refused.append(str(exc))
            return str(exc)
        raise AssertionError(f"medledger {' '.join(args)} should have been refused")

    def create_safe(self, *owners: str, threshold: int) -> str:
        """The deployer creates the governance Safe (Safe 1.4.1 deployed first on this development chain)."""
        out = self.run("governance", "safe", "create", *(x for o in owners for x in ("--owner", self.address(o))),
                       "--threshold", str(threshold))
        self.result.safe.update(address=out["safe"], owners=list(owners), threshold=threshold, executed=[])
        self.result.contracts[f"Safe ({threshold} of {len(owners)})"] = out["safe"]
        return out["safe"]

    def propose(self, owner: str, *args: str) -> str:
        """`medledger --safe SAFE ARGS` as `owner`: the transaction becomes a proposal file (its path)."""
        try:
            self.run(owner, "--safe", self.result.safe["address"], *args)
        except Proposed as done:
            return done.details["proposal"]
        raise AssertionError(f"medledger --safe … {' '.join(args)} was not turned into a proposal")

    def govern(self, what: str, *args: str, label: str | None = None, show_refusal: bool = False) -> dict:
        """A governance transaction (`what` narrates it) through the Safe: the first owner proposes, the second
        confirms, the third executes (anyone may). `show_refusal`: first tries to execute on one signature."""
        proposer, confirmer, executor = self.result.safe["owners"]
        path = self.propose(proposer, *args)
        if show_refusal:
            reason = self.refused(executor, "safe", "execute", path)
            self.say(executor, f"[red]refused[/red] to execute on {proposer.title()}'s signature alone: {reason}")
        self.run(confirmer, "safe", "confirm", path)
        out = self.run(executor, "safe", "execute", path, label=label)
        self.result.safe["executed"].append(out["tx"])
        self.say(None, f"the Safe {what}: {proposer.title()} proposed, {confirmer.title()} confirmed, "
                       f"{executor.title()} executed")
        return out

    def time_travel(self, seconds: int) -> None:
        from web3 import Web3
        w3 = Web3(Web3.HTTPProvider(self.rpc_url))
        w3.provider.make_request("evm_increaseTime", [seconds])
        w3.provider.make_request("evm_mine", [])

    def write_fhir(self, name: str, doc: dict) -> Path:
        path = self.workdir / "fhir" / f"{name}.json"
        path.write_text(json.dumps(doc, indent=1))
        self.result.documents.append(doc)
        return path

    def write_part(self, name: str, visit: dict, data_class: DataClass) -> Path:
        """The ``data_class`` part of ``visit`` as a file (one record of one class); the whole visit counts
        among the documents used, so the PHI scan looks for every value of it."""
        self.result.documents.append(visit)
        return self.write_fhir(name, synthetic.class_part(visit, data_class))


def run_scenario(rpc_url: str, workdir: Path, console: Console | None = None, batch_size: int = 1000) -> DemoResult:
    """The whole story; raises if any step does not behave as told."""
    console = console or Console()
    s = Scenario(rpc_url, workdir, console, batch_size)
    a = s.address

    # ------------------------------------------------------------------ 1. registration and consent
    s.step("1. Deployment, registration and consent")
    steps = s.run("governance", "deploy")
    for row in steps:
        s.result.contracts[row["contract"]] = row["address"]
        s.say("governance", f"{row['contract']:16} {row['address']}  ({row['action']})")
    safe = s.create_safe("priya", "omar", "lena", threshold=2)
    s.say("governance", f"created the governance Safe {safe}: 2 of 3 owners (Priya, Omar, Lena) must sign")
    handed = s.run("governance", "deploy", "--admin", safe, "--registrar", safe,
                   "--timelock-delay", str(TIMELOCK_DELAY))
    timelock = next(r["address"] for r in handed if r["contract"] == "TimelockController")
    s.result.contracts["TimelockController"] = timelock
    s.say("governance", f"handed governance over and renounced every role: the Safe registers and suspends "
                        f"parties and pauses the escrow; a timelock (delay {TIMELOCK_DELAY // 3600} h) the Safe "
                        "proposes to reinstates parties, registers and assigns arbiters and appoints registrars")
    for cmd, who in (("add-insurer", "acme"), ("add-provider", "riverside"), ("add-provider", "northside")):
        s.govern(f"registered {LABELS[who]} (credentials as a hash)", "registry", cmd, a(who),
                 "--credentials", str(credentials(s, who)), label=f"registry.{cmd} (Safe)",
                 show_refusal=who == "acme")
    appoint_arbiter(s)
    for who in ("riverside", "northside", "acme"):
        s.run(who, "registry", "publish-key", label="registry.publishEncryptionKey")
    s.say(None, "the providers and the insurer published their encryption keys; the patients publish nothing "
                "(each pseudonym's first signed consent discloses its key)")

    all_classes = "demographics,conditions,medications,labs,notes,billing"
    p = s.signed_consent("alice", "riverside", "-p", "treat,hpaymt", "-c", all_classes, "--days", "365")
    s.say("alice", f"as {p[:10]}…, her pseudonym for Riverside only, signs treatment + payment access for a year "
                   "(no mental-health, no genomics); Riverside relays it and pays the gas")
    p = s.signed_consent("bob", "riverside", "-p", "treat,hpaymt", "-c", "all", "--days", "180")
    s.say("bob", f"as {p[:10]}… signs a 180-day consent for Riverside; Riverside relays it")
    carol = s.signed_consent("carol", "riverside", "-p", "treat", "-c", "demographics", "--days", "30")
    s.say("carol", f"as {carol[:10]}… lets Riverside see her demographics (this discloses the pseudonym's key)")
    carol_guardian(s, carol)
    for patient in PATIENTS:
        s.signed_consent(patient, "acme", "-p", "hpaymt", "-c", "billing,conditions")
        s.signed_consent(patient, "riverside", "-p", "treat,hpaymt", "-c", all_classes if patient == "alice" else "all",
                         billed_to="acme")
    s.say(None, "each patient's pseudonym for Acme Health (her member pseudonym) lets Acme see billing and "
                "conditions for payment, and lets Riverside, which bills Acme, file records under it")

    # ------------------------------------------------------------------ 2. records
    s.step("2. Records: encrypted, anchored, amended, batched")
    riv = {patient: s.pseudonym(patient, "riverside") for patient in PATIENTS}
    member = {patient: s.pseudonym(patient, "acme") for patient in PATIENTS}
    docs = {p: synthetic.patient_bundle(100 + i, riv[p]) for i, p in enumerate(PATIENTS)}
    record_ids = {}
    # Alice's whole visit, no --class: one record per data class it holds (minimum necessary)
    out = s.run("riverside", "record", "put", str(s.write_fhir("alice-visit", docs["alice"])),
                "--patient", riv["alice"])
    s.result.gas.extend(("record.anchor", int(r["gas_used"])) for r in out["records"])
    record_ids["alice"] = next(r["record_id"] for r in out["records"] if r["data_class"] == "conditions")
    s.say("riverside", f"anchored Alice's visit bundle as {out['count']} records, one per data class "
                       f"({', '.join(r['data_class'] for r in out['records'])}), each sealed for its class's readers")
    for patient in PATIENTS[1:]:
        path = s.write_part(f"{patient}-visit", docs[patient], DataClass.CONDITIONS)
        out = s.run("riverside", "record", "put", str(path), "--patient", riv[patient], "--class", "conditions",
                    label="record.anchor")
        record_ids[patient] = out["record_id"]
        s.say("riverside", f"anchored the conditions of {patient}'s visit: record {out['record_id'][:18]}… v1")
    amended = synthetic.patient_bundle(200, riv["alice"])
    out = s.run("riverside", "record", "amend", record_ids["alice"],
                str(s.write_part("alice-visit-v2", amended, DataClass.CONDITIONS)), label="record.amend")
    s.say("riverside", f"amended Alice's record: v{out['version']} links to v1, nothing overwritten")
    batch_dir = s.workdir / "batch"
    batch_dir.mkdir()
    manifest = {}
    started = time.monotonic()
    for i in range(s.batch_size):
        patient = PATIENTS[i % 3]
        name = f"lab-{i:04d}.json"
        doc = synthetic.patient_bundle(10_000 + i, riv[patient])
        (batch_dir / name).write_text(json.dumps(synthetic.class_part(doc, DataClass.LABS)))
        s.result.documents.append(doc)  # the whole visit: the PHI scan looks for every value of it
        manifest[name] = {"patient": riv[patient], "class": "labs"}
    (batch_dir / "manifest.json").write_text(json.dumps(manifest))
    out = s.run("riverside", "record", "put-batch", str(batch_dir), label=f"record.anchorBatch ({s.batch_size})")
    s.say("riverside", f"{out['count']} synthetic records validated, sealed and anchored in ONE transaction "
                       f"({out['gas_used']:,} gas, {time.monotonic() - started:.1f} s)")

    # ------------------------------------------------------------------ 3. reads
    s.step("3. Reads: consented, refused, break-glass")
    out_file = s.workdir / "riverside-read.json"
    s.run("riverside", "record", "get", record_ids["alice"], "--out", str(out_file), label="record.logAccess (get)")
    s.say("riverside", "read Alice's latest version: unwrapped, decrypted, verified on chain, access logged")
    reason = s.refused("northside", "record", "get", record_ids["alice"], "--out", str(s.workdir / "nope.json"))
    s.say("northside", f"[red]refused[/red]: {reason}")
    s.run("northside", "emergency", "open", riv["bob"], "--hours", "4", "--reason", "unconscious-in-ER",
          label="consent.openBreakGlass")
    s.say("northside", "Bob arrives unconscious; his emergency card carries his Riverside pseudonym: break-glass "
                       "opened on it for 4 h (ETREAT only, visible to Bob)")
    s.run("riverside", "record", "amend", record_ids["bob"],
          str(s.write_part("bob-visit-v2", docs["bob"], DataClass.CONDITIONS)),
          "--emergency-reader", a("northside"), label="record.amend")
    s.say("riverside", "Riverside re-seals Bob's latest version for today's readers and, deliberately, the ER "
                       "team (break-glass alone gives no key)")
    s.run("northside", "record", "get", record_ids["bob"], "--purpose", "etreat",
          "--out", str(s.workdir / "er-read.json"), label="record.logAccess (break-glass)")
    s.say("northside", "read Bob's record under break-glass; the access is logged with purpose ETREAT")
    bob_closes_break_glass(s, riv["bob"])
    reason = s.refused("northside", "emergency", "open", riv["bob"], "--hours", "1", "--reason", "unconscious-in-ER")
    s.say("northside", f"[red]refused[/red]: {reason} (reopening waits until Bob runs `emergency allow`)")

    # ------------------------------------------------------------------ 4. escrow and coverage
    s.step("4. Acme Health funds the escrow and enrols the patients")
    s.run("governance", "dev", "mint", a("acme"), str(50_000 * 10**6))
    s.run("acme", "escrow", "deposit", "20000", label="escrow.deposit")
    s.run("acme", "claim", "rules", "set", "--prompt-pay-days", "14", "--dispute-days", "30", "--auto-max", "150",
          "--auto-service", "100-199", label="escrow.setTerms")
    s.say("acme", "deposited 20,000 (permit, one transaction); auto-approves claims up to 150 for services "
                  "100-199; prompt-pay deadline 14 days")
    for patient in PATIENTS:
        s.run("acme", "coverage", "enroll", member[patient], "--policy-hash", "0x" + os.urandom(32).hex(),
              "--backdate-days", "30", "--per-claim-limit", "5000", "--auto-classes", "conditions,labs",
              label="escrow.setCoverage")
    s.say("acme", "enrolled Alice, Bob and Carol under their member pseudonyms (policy commitments only)")

    # ------------------------------------------------------------------ 5. claims
    s.step("5. Four claims")
    s.run("riverside", "claim", "push-payments", "on", label="escrow.setPushPayments")
    billed = {}
    for patient in PATIENTS:
        doc = synthetic.patient_bundle(400 + PATIENTS.index(patient), member[patient])
        path = s.write_part(f"{patient}-billed-visit", doc, DataClass.CONDITIONS)
        out = s.run("riverside", "record", "put", str(path), "--patient", member[patient], "--class", "conditions",
                    label="record.anchor")
        billed[patient] = out["record_id"]
    s.say("riverside", "filed each billed visit under the patient's member pseudonym, the one Acme's coverage "
                       "names (the link between a patient's Riverside and Acme pseudonyms is never on chain)")

    services = {150: ("99213", "Office visit, established patient"), 300: ("11042", "Debridement, subcutaneous"),
                310: ("71046", "Chest X-ray, 2 views"), 320: ("80053", "Comprehensive metabolic panel")}

    def submit(patient: str, amount: str, service: int, control: str, label: str) -> dict:
        # The Claim is the source of truth: its total is the amount, its CPT code maps to the service (docs/FHIR.md)
        claim_doc = synthetic.claim_resource(int.from_bytes(keccak(text=control)[:2], "big"), quantity=1,
                                             procedures=[(*services[service], float(amount))])
        path = s.write_fhir(f"claim-{control}", claim_doc)
        return s.run("riverside", "claim", "submit", "--patient", member[patient], "--insurer", a("acme"),
                     "--amount", amount, "--record", billed[patient], "--service", str(service),
                     "--claim-file", str(path), "--control", control, label=label)

    out = submit("alice", "120", 150, "RIV-0001", "claim.submitAutoPaid")
    s.say("riverside", f"claim 1 (Alice, 120): {out['status']} at submission and paid in the same transaction")
    submit("bob", "900", 300, "RIV-0002", "claim.submit")
    s.run("acme", "claim", "approve", a("riverside"), "RIV-0002", "--amount", "600", "--copay", "30",
          "--reason", "45", label="claim.approve (partial)")
    s.say("acme", "claim 2 (Bob, 900): approved 600, copay 30 on Bob's statement; 300 (the copay included) "
                  "contested (CARC 45)")
    claim3 = submit("carol", "400", 310, "RIV-0003", "claim.submit")
    s.run("acme", "claim", "deny", a("riverside"), "RIV-0003", "--reason", "96", label="claim.deny")
    s.say("acme", "claim 3 (Carol, 400): denied (CARC 96)")
    s.run("riverside", "claim", "dispute", "RIV-0003", "--evidence-hash", "0x" + os.urandom(32).hex(),
          label="claim.dispute")
    s.run("reyes", "claim", "resolve", a("riverside"), claim3["control"], "--award", "250",
          "--decision-hash", "0x" + os.urandom(32).hex(), label="claim.resolve")
    s.say("reyes", "dispute on claim 3 resolved as the arbiter assigned to Acme: 250 awarded, 150 back to Acme's "
                   "free balance")
    claim4 = submit("alice", "200", 320, "RIV-0004", "claim.submit")
    s.say("riverside", "claim 4 (Alice, 200) submitted; Acme does not answer")
    s.time_travel(15 * DAY)
    s.run("relay", "claim", "finalize-expired", a("riverside"), claim4["control"], label="claim.finalizeDeemed")
    s.say("relay", "15 days later anyone may finalise it (by its 0x control number; \"RIV-0004\" is keyed to "
                   "Riverside and Acme): deemed approved and credited")
    bal = s.run("riverside", "escrow", "balance")
    if bal["owed"]:
        s.run("riverside", "claim", "withdraw", label="claim.withdraw")
    bal = s.run("riverside", "escrow", "balance")
    s.say("riverside", f"withdrew what it was owed; wallet now {bal['wallet'] / 10**6:,.2f} mUSDC")
    acme = s.run("acme", "escrow", "balance")
    s.say("acme", f"free {acme['free'] / 10**6:,.2f}, encumbered {acme['encumbered'] / 10**6:,.2f} "
                  "(300 still disputable on claim 2)")

    # ------------------------------------------------------------------ 6. audit
    s.step("6. Alice's audit trail, across her pseudonyms, rebuilt from chain events")
    trail = s.run("alice", "audit", "--format", "json")
    s.result.audit = trail
    table = Table(show_lines=False)
    for col in ("block", "contract", "event", "actor / counterpart"):
        table.add_column(col)
    for e in trail:
        args = e["args"]
        who = next((args[k] for k in ("actor", "grantee", "accessor", "provider", "author", "insurer", "arbiter")
                    if k in args), "")
        table.add_row(str(e["block"]), e["contract"], e["event"], str(who))
    console.print(table)

    # ------------------------------------------------------------------ 7. gateway and index
    s.step("7. The record gateway (live consent, audited reads) and the event index")
    gateway_story(s)
    index_story(s)
    return s.result


def credentials(s: Scenario, who: str) -> Path:
    """A party's credentials document (committed as a salted hash, never sent)."""
    creds = s.workdir / f"{who}-credentials.json"
    creds.write_text(json.dumps({"party": LABELS[who], "npi_or_payer_id": f"{persona_index(who):010d}"}))
    return creds


def appoint_arbiter(s: Scenario) -> None:
    """Separated powers: no registrar appoints an arbiter. The Safe schedules Dr. Reyes's registration and his
    assignment to Acme in the timelock; before the delay nobody can execute them; the chain's clock is
    advanced over the delay and anyone (the relayer) executes both."""
    a, reyes = s.address, credentials(s, "reyes")
    reason = s.refused("priya", "--safe", s.result.safe["address"], "registry", "add-arbiter", a("reyes"),
                       "--credentials", str(reyes))
    s.say("priya", f"[red]refused[/red] to propose registering Dr. Reyes directly (a registrar cannot): {reason}")
    s.govern("scheduled the registration of Dr. Reyes as arbiter", "governance", "schedule", "add-arbiter", a("reyes"),
             "--credentials", str(reyes), label="timelock.schedule (Safe)")
    s.govern("scheduled the assignment of Dr. Reyes to Acme Health's disputes", "governance", "schedule",
             "assign-arbiter", a("acme"), a("reyes"))
    reason = s.refused("relay", "governance", "execute", "add-arbiter", a("reyes"), "--credentials", str(reyes))
    s.say("relay", f"[red]refused[/red] before the delay: {reason}")
    s.time_travel(TIMELOCK_DELAY + 60)
    s.say(None, f"(the development chain's clock is advanced {TIMELOCK_DELAY // 3600} h, over the timelock's delay)")
    s.run("relay", "governance", "execute", "add-arbiter", a("reyes"), "--credentials", str(reyes),
          label="timelock.execute (register arbiter)")
    s.run("relay", "governance", "execute", "assign-arbiter", a("acme"), a("reyes"),
          label="timelock.execute (assign arbiter)")
    s.say("relay", "executed both: Dr. Reyes is an arbiter, and the only one who can resolve Acme's disputes")


def carol_guardian(s: Scenario, carol: str) -> None:
    """Carol is a minor: her Riverside pseudonym appoints Dana, who then decides for it."""
    signed = s.workdir / "signed" / "carol-appoints-dana.json"
    s.run("carol", "consent", "guardian", "add", s.address("dana"), "--patient", carol, "--sign", "-o", str(signed))
    s.run("dana", "consent", "relay", str(signed), label="consent.appointGuardianBySig")
    s.say("carol", "her Riverside pseudonym signs Dana's appointment as guardian; Dana relays it")
    s.run("dana", "consent", "grant", s.address("riverside"), "--patient", carol, "-p", "treat,hpaymt", "-c", "all",
          label="consent.grant (guardian)")
    s.say("dana", "as Carol's guardian, grants Riverside treatment + payment access on Carol's behalf")


def bob_closes_break_glass(s: Scenario, bob: str) -> None:
    """Bob closes Northside's emergency window early, gas-free: his pseudonym signs, a relayer sends."""
    signed = s.workdir / "signed" / "bob-closes-northside.json"
    s.run("bob", "emergency", "close", bob, s.address("northside"), "--sign", "-o", str(signed))
    s.run("relay", "consent", "relay", str(signed), label="consent.closeBreakGlassBySig")
    s.say("bob", "closed the emergency access early: his pseudonym signed, a public relayer sent it")


def _resources(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", [])]


def _fhir_digest(bundle: dict) -> str:
    """keccak of the RFC 8785 canonical bytes of a Bundle, without the server's `meta` (version, last-updated)."""
    from medledger.fhir import canonical_document
    return "0x" + canonical_document({k: v for k, v in bundle.items() if k != "meta"}).keccak.hex()


def gateway_story(s: Scenario) -> None:
    """Riverside runs a record gateway: it stores a record for Alice, reads it back (the bytes match what it
    put and the chain anchors the sealed copy), Northside and a wrong purpose are refused, every read is
    audited and proved on chain, and Alice's revocation stops Riverside at the next request."""
    from medledger.accounts import LocalSigner
    from medledger.data_classes import class_of
    from medledger.gateway.client import GatewayClient
    from medledger.gateway.sealing import assign_ids

    a = s.address
    data = s.workdir / "gateway"
    # --head-ttl 0: the gateway polls the chain head at every request (so a revocation counts at once);
    # --batch-seconds 0.5: the audit log is anchored (logAccessBatch) within half a second of a read.
    # --publish: the gateway publishes its origin as Riverside's endpoint in the CareRegistry (federation).
    gw = GatewayProcess(s.rpc_url, s.workdir / "deployments.json", data, dev_private_key(persona_index("riverside")),
                        "--head-ttl", "0", "--batch-seconds", "0.5", "--publish", home=s.workdir,
                        log=s.workdir / "gateway.log")
    info = s.result.gateway
    info.update(data=str(data), audit_db=str(data / "gateway.db"), log=str(gw.log_path))
    started = time.monotonic()
    gw.start()
    try:
        url, info["pid"] = gw.url, gw.process.pid
        info["url"] = url
        s.say("riverside", f"started its record gateway at {url} (pid {gw.process.pid}; data in {data}) and "
                           f"published it as its endpoint in the CareRegistry")
        alice_member = s.pseudonym("alice", "acme")
        doc = synthetic.patient_bundle(300, alice_member)
        path = s.write_fhir("alice-gateway-visit", doc)
        created = s.run("riverside", "gateway", "put", str(path), "--patient", alice_member, "--gateway", url)
        rid = info["record_id"] = created["recordId"]
        s.say("riverside", f"put Alice's visit through the gateway: record {rid[:18]}… (classes "
                           f"{', '.join(created['classes'])}) sealed for Alice + the gateway key, anchored on chain")
        history = s.run(None, "record", "history", rid)
        if [h["content_hash"] for h in history] != [created["contentHash"]]:
            raise AssertionError(f"the chain anchors {history}, not the gateway's sealed copy {created['contentHash']}")

        out = s.workdir / "gateway-riverside-read.json"
        s.run("riverside", "gateway", "get", rid, "--gateway", url, "--out", str(out))
        served = json.loads(out.read_text())
        # what Riverside put: the file's bytes, with the ids the gateway assigns to resources that had none
        sent = _fhir_digest(assign_ids(json.loads(path.read_text())))
        got = _fhir_digest(served)
        if sent != got:
            raise AssertionError(f"the gateway served other resources than Riverside put ({got} != {sent})")
        info["digest"] = got
        s.say("riverside", f"read it back through the gateway (SIWE sign-in, live consent checked): "
                           f"{len(served['entry'])} resources; canonical keccak {got[:18]}… matches what it put")

        reason = s.refused("northside", "gateway", "get", rid, "--gateway", url)
        s.say("northside", f"[red]refused[/red] (no consent from Alice): {reason}")
        reason = s.refused("acme", "gateway", "get", rid, "--gateway", url, "--purpose", "TREAT")
        s.say("acme", f"[red]refused[/red] for treatment: {reason}")
        paid = s.workdir / "gateway-acme-read.json"
        s.run("acme", "gateway", "get", rid, "--gateway", url, "--purpose", "HPAYMT", "--out", str(paid))
        released = _resources(json.loads(paid.read_text()))
        types = sorted({r["resourceType"] for r in released})
        if not released or {class_of(r) for r in released} - {DataClass.BILLING, DataClass.CONDITIONS}:
            raise AssertionError(f"the gateway released more than billing + conditions to Acme: {types}")
        s.say("acme", f"for payment (HPAYMT) gets only what Alice consented to: {', '.join(types)}")

        # every released read is an audit entry, committed before the answer and anchored in a Merkle batch
        gw.wait_idle()
        chain_id = int(gw.health()["chainId"])
        identity = PatientIdentity.of(LocalSigner(dev_account(persona_index("alice"))), chain_id)
        alice = GatewayClient(url, identity.pseudonym(Relationship.INSURER, a("acme")).signer, chain_id)
        alice.login()
        entries = alice.audit(alice_member)
        readers = sorted({e["reader"] for e in entries if e["recordId"] == rid})
        if readers != sorted({a("riverside"), a("acme")}) or not all(e["anchored"] for e in entries):
            raise AssertionError(f"the gateway's audit log does not hold exactly the two released reads: {entries}")
        seq = next(e["seq"] for e in entries if e["reader"] == a("riverside") and e["recordId"] == rid)
        s.say("alice", f"sees {len(entries)} audited read(s) of her records at the gateway "
                       f"(Riverside, Acme; the refusals released nothing)")
        if not alice.audit_proof(seq)["anchored"]:  # wait_idle waited for the logAccessBatch receipt
            raise AssertionError(f"audit entry {seq} is not anchored although the gateway is idle: {gw.health()}")
        proof = s.run("riverside", "gateway", "proof", str(seq), "--gateway", url)
        if not proof.get("verifiedOnChain"):
            raise AssertionError(f"audit entry {seq}'s inclusion proof does not check against the chain: {proof}")
        info["audit_seq"], info["audit_root"] = seq, proof["root"]
        s.say("riverside", f"audit entry {seq}: Merkle proof checks against the batch root {proof['root'][:18]}… "
                           f"anchored with logAccessBatch in block {proof.get('block')}")

        federation_story(s, alice_member, rid)

        s.signed_consent("alice", "riverside", "--revoke", billed_to="acme", relayer="relay",
                         label="consent.revokeBySig")
        info["revoke_block"] = s.last_relay["block"]
        s.say("alice", f"signs a revocation of Riverside's consent; a public relayer sends it (block "
                       f"{s.last_relay['block']})")
        reason = s.refused("riverside", "gateway", "get", rid, "--gateway", url)
        s.say("riverside", f"[red]refused[/red] at its very next request: {reason}")
        info["refusals"] = s.result.refused[-3:]
    finally:
        gw.stop()
    code = info["exit_code"] = gw.process.poll() if gw.process else None
    if code is None:
        raise AssertionError("the gateway process did not stop")
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal: -15 is a clean stop
    s.say("riverside", f"stopped its gateway (SIGTERM, exit {code}); the gateway part took "
                       f"{time.monotonic() - started:.1f} s")


def federation_story(s: Scenario, alice_member: str, riverside_record: str) -> None:
    """Northside runs a gateway of its own and publishes it too; it stores a lab visit of Alice's there. Alice
    fetches her history across both custodians in one command: each record from its custodian's gateway."""
    data = s.workdir / "gateway-northside"
    gw = GatewayProcess(s.rpc_url, s.workdir / "deployments.json", data, dev_private_key(persona_index("northside")),
                        "--head-ttl", "0", "--batch-seconds", "0.5", "--publish", home=s.workdir,
                        log=s.workdir / "gateway-northside.log")
    gw.start()
    try:
        published = s.run(None, "registry", "endpoint", "show", s.address("northside"))["url"]
        if published != gw.url:
            raise AssertionError(f"Northside's endpoint on chain is {published}, not its gateway {gw.url}")
        s.say("northside", f"started its own record gateway and published it: {published}")
        s.signed_consent("alice", "northside", "-p", "treat", "-c", "all", billed_to="acme", relayer="relay")
        path = s.write_fhir("alice-northside-labs", synthetic.patient_bundle(301, alice_member))
        created = s.run("northside", "gateway", "put", str(path), "--patient", alice_member, "--gateway", gw.url)
        s.say("northside", f"Alice consents (signed, relayed); Northside stores her lab visit at its gateway: record "
                           f"{created['recordId'][:18]}…")
        out_dir = s.workdir / "alice-history"
        found = s.run("alice", "record", "history", alice_member, "-o", str(out_dir))
        fetched = {e["record_id"]: e for e in found["entries"] if e["status"] == "fetched"}
        wanted = {riverside_record: s.address("riverside"), created["recordId"]: s.address("northside")}
        if {rid: fetched[rid]["custodian"] for rid in wanted if rid in fetched} != wanted:
            raise AssertionError(f"Alice's history misses a gateway record: {found}")
        s.result.gateway["history"] = {"entries": len(found["entries"]), "fetched": len(fetched),
                                       "dir": str(out_dir)}
        s.say("alice", f"`record history`: {len(fetched)} of {len(found['entries'])} of her records fetched from "
                       f"{len(found['custodians'])} custodian(s) in one timeline (FHIR in {out_dir.name}/)")
        names = {s.address(name): LABELS[name] for name in PERSONAS}
        for c in found["custodians"]:
            if c["status"] != "ok":  # records put into the shared vault, not through a gateway, are not found there
                s.say("alice", f"  {names.get(c['custodian'], c['custodian'])}: {c['status']}, {c['fetched']} of "
                               f"{c['records']} fetched; the rest went into the shared vault, not through its gateway "
                               f"({c['reason'][:60]})")
    finally:
        gw.stop()


def index_story(s: Scenario) -> None:
    """The event index (SQLite under the workdir) catches up with the demo's chain and answers Acme's claim
    queue, Alice's records (the gateway's one included) and her consent state before and after the revoke."""
    a, info = s.address, s.result.gateway
    db_file = s.workdir / "index.sqlite"
    db = f"sqlite:///{db_file}"
    synced = s.run(None, "index", "--db", db)
    if synced["indexed_to"] != synced["head"]:
        raise AssertionError(f"the index stopped short of the head: {synced}")
    s.result.index.update(db=str(db_file), url=db, indexed_to=synced["indexed_to"])
    s.say(None, f"the index ({db_file.name}) caught up to block {synced['indexed_to']:,} "
                f"({synced['events']:,} new events since step 6's `audit` synced it)")

    queue = s.run(None, "claim", "queue", "--insurer", a("acme"), "--db", db)
    if sum(queue["counts"].values()) != 4 or len(queue["contestable"]) != 1:
        raise AssertionError(f"the index's claim queue does not show Acme's four claims and claim 2 contestable: "
                             f"{queue['counts']}")
    s.result.index["claims"] = queue["counts"]
    counts = ", ".join(f"{n} {state}" for state, n in sorted(queue["counts"].items()))
    s.say("acme", f"claim queue from the index: {counts}; contestable now: "
                  f"{', '.join(c['claim_id'][:18] + '…' for c in queue['contestable'])} (claim 2)")

    alice_member = s.pseudonym("alice", "acme")
    listed = s.run(None, "record", "list", "--patient", alice_member, "--db", db)
    ids = {r["record_id"] for r in listed}
    if info["record_id"] not in ids:
        raise AssertionError(f"the index does not list the record the gateway anchored ({info['record_id']})")
    s.say("alice", f"her records from the index: {len(listed):,} anchored one by one (her visit and the gateways' "
                   "records; batch members appear once promoted)")

    block = info["revoke_block"]
    before = s.run(None, "consent", "state", "--patient", alice_member, "--grantee", a("riverside"),
                   "--block", str(block - 1), "--db", db)
    after = s.run(None, "consent", "state", "--patient", alice_member, "--grantee", a("riverside"), "--db", db)
    if not (before and before[0]["granted"]) or (after and after[0]["granted"]):
        raise AssertionError(f"the index's consent state misses the revoke: before {before}, after {after}")
    purposes = ", ".join(p.name for p in Purpose if before[0]["purposes"] >> int(p) & 1)
    s.say("alice", f"consent of Riverside from the index: granted as of block {block - 1:,} ({purposes}), "
                   f"revoked since block {block:,}")


def print_summary(result: DemoResult, console: Console) -> None:
    """The operations and the gas each used."""
    table = Table(title="Gas used per operation (from receipts)")
    table.add_column("operation")
    table.add_column("gas", justify="right")
    for label, gas in result.gas:
        table.add_row(label, f"{gas:,}")
    console.print(table)
    addresses = Table(title="Deployed contracts and acting parties")
    addresses.add_column("who")
    addresses.add_column("address")
    for name, address in result.contracts.items():
        addresses.add_row(name, address)
    for name, address in result.addresses.items():
        addresses.add_row(LABELS[name], address)
    console.print(addresses)
    if result.pseudonyms:
        table = Table(title="Pairwise pseudonyms (what the chain names; the wallets above never appear)")
        for col in ("patient", "relationship with", "pseudonym"):
            table.add_column(col)
        for (patient, counterparty), address in sorted(result.pseudonyms.items()):
            table.add_row(LABELS[patient], LABELS[counterparty], address)
        console.print(table)
    print_where_to_look(result, console)


def print_where_to_look(result: DemoResult, console: Console) -> None:
    """The files the demo left and the commands to start the gateway and query the index yourself."""
    if result.workdir is None:
        return
    w, gw, ix = result.workdir, result.gateway, result.index
    rows = [("workdir (vault, sealed blobs, FHIR)", str(w)), ("deployments", str(w / "deployments.json"))]
    if gw:
        rows += [("gateway data dir (sealed blobs, gateway key)", gw["data"]),
                 ("gateway audit log (SQLite tables audit_entries, audit_batches; anchored with logAccessBatch)",
                  gw["audit_db"]),
                 ("gateway server log", gw["log"])]
    if ix:
        rows.append(("index database (SQLite)", ix["db"]))
    console.rule("[bold]Where to look")
    for what, where in rows:
        console.print(f"  {what}:\n    {where}", highlight=False, soft_wrap=True)
    acme, riverside = (result.addresses[n] for n in ("acme", "riverside"))
    alice = result.pseudonyms.get(("alice", "acme"), result.addresses["alice"])  # her member pseudonym
    env = f"export MEDLEDGER_RPC={result.rpc_url} MEDLEDGER_HOME={w} MEDLEDGER_DEPLOYMENTS={w / 'deployments.json'}"
    lines = [env]
    if gw:
        record = gw.get("record_id", "RECORD_ID")
        lines += [
            "# the gateway (Riverside is its custodian; the key password protects the gateway's own key)",
            f"MEDLEDGER_GATEWAY_KEY_PASSWORD=... medledger --account <riverside's account> gateway serve "
            f"--data {gw['data']} --port 8700",
            "export MEDLEDGER_GATEWAY=http://127.0.0.1:8700",
            f"medledger --account <a reader's account> record list {alice}",
            f"medledger --account <a reader's account> record get {record}",
            f"medledger --account <the reader or the patient> gateway proof {gw.get('audit_seq', 1)}",
            "medledger --account <the reader or the patient> audit verify     # every entry you may see, "
            "against the chain",
        ]
    if ix:
        db = ix["url"]
        lines += ["# the index",
                  f"medledger index --db {db}                 # catch up (add --follow to keep following)",
                  f"medledger audit {alice} --db {db}         # one pseudonym; Alice herself runs "
                  "`medledger --pairwise --account <alice> audit` for all of hers",
                  f"medledger record list --patient {alice} --db {db}",
                  f"medledger claim queue --insurer {acme} --db {db}",
                  f"medledger consent state --patient {alice} --grantee {riverside} --db {db}"]
    console.print("[bold]Try it yourself[/bold] (on a chain holding this deployment: the Ganache that the demo "
                  "launches stops with it, so point the demo at a node you keep running to explore afterwards):")
    for line in lines:
        console.print(f"  {line}", highlight=False, soft_wrap=True)
