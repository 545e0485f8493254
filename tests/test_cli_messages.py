"""Issue 13, finding 15: every contract error reads as a sentence with units, dates and names, and no
input gives a traceback. Through the real `medledger` entry point on the test Ganache, plus a check
of every custom error in the compiled contracts against `medledger.messages`."""
import json
import os
import re
import string
from pathlib import Path

import pytest
from brownie import web3
from eth_account import Account
from support.nodes import cli_env, dev_key, funded_keystores, run_cli, run_json

from medledger.accounts import LocalSigner
from medledger.chain import Chain
from medledger.config import load_settings
from medledger.contracts import RecordRegistry
from medledger.messages import TEMPLATES, Context, render, words
from medledger.record_ids import new_record_id
from medledger.scopes import DataClass
from medledger.units import TokenInfo

ACTORS = {"gov": 0, "clinic": 12, "payer": 14, "alice": 16, "relayer": 18}
BUILD = Path(__file__).resolve().parents[1] / "build" / "contracts"
DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC")


def compiled_errors() -> dict[str, dict]:
    """Every custom error in the compiled contracts (by name; the same name has the same inputs)."""
    found: dict[str, dict] = {}
    for path in sorted(BUILD.glob("*.json")):
        for item in json.loads(path.read_text()).get("abi", []):
            if item.get("type") == "error":
                found.setdefault(item["name"], item)
    return found


def sample(abi_type: str):
    if abi_type == "address":
        return "0x" + "Ab" * 20
    if abi_type.startswith("bytes"):
        return b"\x22" * (int(abi_type[5:] or 32))
    if abi_type == "bool":
        return True
    if abi_type == "string":
        return "text"
    return 1_800_000_000 if abi_type.startswith("uint") else 7


def test_every_compiled_error_renders_as_a_sentence():
    errors = compiled_errors()
    assert len(errors) > 80
    ctx = Context(token=lambda: TokenInfo("0x" + "00" * 20, "mUSDC", 6), name_of=lambda a: "alice")
    for name, item in errors.items():
        types = [i["type"] for i in item["inputs"]]
        arg_names = [i["name"] for i in item["inputs"]]
        text = render(name, types, arg_names, [sample(t) for t in types], ctx)
        assert text and f"{name}(" not in text and "=" not in text, (name, text)
        assert "base units" not in text, (name, text)  # the token is known: amounts are in token units
        if name in TEMPLATES:  # a template names only inputs the error really has
            fields = {f for _, f, _, _ in string.Formatter().parse(TEMPLATES[name]) if f}
            assert fields <= set(arg_names), (name, fields - set(arg_names))
        else:
            assert text.lower().startswith(words(name).lower()), (name, text)


def test_units_dates_and_names():
    ctx = Context(token=lambda: TokenInfo("0x" + "00" * 20, "mUSDC", 6),
                  name_of=lambda a: {"0x" + "11" * 20: "alice", "0x" + "22" * 20: "payer"}.get(a))
    text = render("InvalidAdjudication", ["uint256"] * 3, ["billed", "approved", "patientShare"],
                  [1_240_500_000, 1_240_500_000, 20_000_000], ctx)
    assert "billed 1,240.50 mUSDC" in text and "1240500000" not in text
    text = render("MissingConsent", ["address", "address", "uint8", "uint8"], ["patient", "grantee", "purpose",
                  "dataClass"], ["0x" + "11" * 20, "0x" + "22" * 20, 2, 10], ctx)
    assert text == (f"patient alice (0x{'11' * 20}) has not given payer (0x{'22' * 20}) HPAYMT consent for "
                    f"substance-use")
    text = render("InvalidScope", ["uint8", "uint16"], ["purposes", "dataClasses"], [0b101, 0b11], ctx)
    assert "TREAT, HPAYMT" in text and "demographics, conditions" in text
    assert DATE.search(render("SignatureExpired", ["uint256"], ["deadline"], [1_800_000_000], ctx))
    generic = render("CareIncentiveCapReached", ["address", "uint256", "uint40"], ["provider", "amount", "until"],
                     ["0x" + "11" * 20, 5_000_000, 1_800_000_000], ctx)
    assert generic == f"Care incentive cap reached: provider alice (0x{'11' * 20}), amount 5.00 mUSDC, until " \
                      f"2027-01-15 08:00:00 UTC"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("messages")
    env = cli_env(home, MEDLEDGER_RPC=web3.provider.endpoint_uri)
    funded_keystores(env, ACTORS)
    run_cli(env, "--account", "gov", "deploy")
    for cmd, who in (("add-provider", "clinic"), ("add-insurer", "payer")):
        run_cli(env, "--account", "gov", "registry", cmd, who, "--metadata", "0x" + os.urandom(32).hex())
    run_cli(env, "--account", "gov", "dev", "mint", "payer", "1000000000")  # 1,000 tokens
    run_cli(env, "--account", "payer", "escrow", "deposit", "500")
    run_cli(env, "--account", "payer", "claim", "rules", "set", "--prompt-pay-days", "15")
    run_cli(env, "--account", "payer", "coverage", "enroll", "alice", "--policy-hash", "0x" + "ab" * 32)
    run_cli(env, "--account", "alice", "consent", "grant", "clinic", "-p", "treat,hpaymt", "-c", "conditions")
    run_cli(env, "--account", "alice", "consent", "grant", "payer", "-p", "hpaymt", "-c", "billing,conditions")
    return env


def anchored_record(env, patient: str) -> str:
    """RECORD_ID:CONTENT_HASH of a record the clinic anchored for `patient` (through the SDK)."""
    settings = load_settings(rpc=web3.provider.endpoint_uri, deployments_path=env["MEDLEDGER_DEPLOYMENTS"])
    sdk = Chain(settings)
    deployed = json.loads(Path(env["MEDLEDGER_DEPLOYMENTS"]).read_text())[str(sdk.chain_id)]
    registry = RecordRegistry(sdk, deployed["RecordRegistry"]["address"])
    record_id, content = new_record_id(patient), os.urandom(32)
    registry.anchor(LocalSigner(Account.from_key(dev_key(ACTORS["clinic"]))), record_id, patient, content,
                    DataClass.CONDITIONS)
    return f"0x{record_id.hex()}:0x{content.hex()}"


def one_line(proc) -> str:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("amount,needle", [
    ("sNaN", "'sNaN' is not a finite number"),
    ("NaN", "'NaN' is not a finite number"),
    ("inf", "'inf' is not a finite number"),
    ("-Infinity", "'-Infinity' is not a finite number"),
    ("-5", "'-5' is negative"),
    ("1e999999999", "'1e999999999' is too large"),
    ("1.0000001", "'1.0000001' has too many decimals"),
    ("0", "'0' must be positive"),
    ("twelve", "'twelve' is not a number"),
])
def test_bad_amounts_are_one_line(env, amount, needle):
    line = one_line(run_cli(env, "--account", "payer", "escrow", "deposit", "--", amount, check=False))
    assert needle in line, line


def test_contract_errors_are_sentences_with_units_dates_and_names(env):
    alice = run_json(env, "--account", "alice", "escrow", "balance")["account"]
    records = ("--record", anchored_record(env, alice))
    control = "0x" + os.urandom(32).hex()  # the 0x form: alice, no party to the claim, cannot key a text one
    run_cli(env, "--account", "clinic", "claim", "submit", "--patient", "alice", "--insurer", "payer", "--amount",
            "40", *records, "--service", "300", "--claim-hash", "0x" + "cd" * 32, "--control", control)
    # Amounts: InvalidAdjudication in token units with the symbol, never raw base units.
    line = one_line(run_cli(env, "--account", "payer", "claim", "approve", "clinic", control, "--amount", "40",
                            "--copay", "5", check=False))
    assert "InvalidAdjudication" not in line and "40.00 mUSDC" in line and "5.00 mUSDC" in line, line
    assert "40000000" not in line
    # Dates: DeadlineNotReached as an ISO UTC date, never Unix seconds.
    line = one_line(run_cli(env, "--account", "alice", "claim", "finalize-expired", "clinic", control, check=False))
    assert "DeadlineNotReached" not in line and DATE.search(line), line
    # Names: parties by account name, roles by name.
    line = one_line(run_cli(env, "--account", "clinic", "consent", "grant", "payer", "--patient", "alice",
                            "-p", "hpaymt", "-c", "billing", check=False))
    assert "NotPatientOrGuardian" not in line and "clinic (" in line and f"patient alice ({alice})" in line, line
    line = one_line(run_cli(env, "--account", "alice", "claim", "submit", "--patient", "alice", "--insurer", "payer",
                            "--amount", "1", *records, "--service", "1", "--claim-hash", "0x" + "cd" * 32,
                            check=False))
    assert "NotActiveParty" not in line and f"alice ({alice}) is not an active provider" in line, line


def test_replayed_signature_is_already_used(env, tmp_path):
    signed = tmp_path / "grant.json"
    run_cli(env, "--account", "alice", "consent", "sign", "payer", "-p", "hpaymt", "-c", "billing", "-o", str(signed))
    run_cli(env, "--account", "clinic", "consent", "relay", str(signed))
    line = one_line(run_cli(env, "--account", "relayer", "consent", "relay", str(signed), check=False))
    assert "this signature was already used" in line and "InvalidSignature" not in line, line


def test_tables_show_dates_and_token_units(env):
    cover = run_cli(env, "--account", "payer", "coverage", "show", "alice").stdout
    assert DATE.search(cover) and "none" in cover, cover  # from/until as dates; no limits
    listed = run_cli(env, "consent", "list", "alice").stdout
    assert "always" in listed and "never" in listed and not re.search(r"\b\d{10}\b", listed), listed
    raw = run_json(env, "--account", "payer", "coverage", "show", "alice")
    assert isinstance(raw["valid_from"], int) and str(raw["valid_from"]) not in cover  # JSON keeps integers
