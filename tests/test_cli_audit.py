"""`medledger audit` exports exactly the events the chain emitted about a patient: rebuilt from
logs by the CLI, compared with the events decoded from each transaction's own receipt."""
import csv
import io
import json

import pytest
from brownie import web3
from brownie.network.transaction import TransactionReceipt
from support.nodes import deployed_env, run_cli, run_json

ACTORS = {"gov": 0, "clinic": 12, "payer": 14, "erin": 16, "frank": 19}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return deployed_env(tmp_path_factory.mktemp("audit"), web3.provider.endpoint_uri, ACTORS,
                        providers=("clinic",), insurers=("payer",))


def tx_of(env, *args):
    return json.loads(run_cli(env, "--json", *args).stdout)["tx"]


def test_audit_export_equals_emitted_events(env):
    addr = json.loads(env["ADDRESSES"])
    txs = [
        tx_of(env, "--account", "erin", "consent", "grant", "clinic", "-p", "treat", "-c", "labs", "--days", "10"),
        tx_of(env, "--account", "erin", "consent", "guardian", "add", "frank"),
        tx_of(env, "--account", "frank", "consent", "grant", "payer", "--patient", "erin", "-p", "hpaymt",
              "-c", "billing"),
        tx_of(env, "--account", "frank", "consent", "grant", "clinic", "--patient", "frank", "-p", "treat",
              "-c", "labs"),  # Frank's own consent: not Erin's business
        tx_of(env, "--account", "clinic", "emergency", "open", "erin", "--reason", "trauma"),
        tx_of(env, "--account", "erin", "emergency", "close", "erin", "clinic"),
        tx_of(env, "--account", "erin", "consent", "revoke", "payer"),
        tx_of(env, "--account", "erin", "consent", "guardian", "remove", "frank"),
    ]
    # What the chain emitted, decoded from each receipt by brownie (an independent decoder).
    expected = []
    for tx in txs:
        receipt = TransactionReceipt(tx)
        for event in receipt.events:
            fields = {key: event[key] for key in event.keys()}
            if str(fields.get("patient", "")).lower() == addr["erin"].lower():
                expected.append((tx, event.name, {k: str(v).lower() for k, v in fields.items()}))
    assert len(expected) == 7  # everything but Frank's own grant

    exported = json.loads(run_cli(env, "audit", "erin", "--format", "json", "--chunk", "3").stdout)
    got = [(e["tx"], e["event"], {k: str(v).lower() for k, v in e["args"].items()}) for e in exported]
    assert got == expected

    rows = list(csv.DictReader(io.StringIO(run_cli(env, "audit", "erin", "--format", "csv").stdout)))
    assert [(r["tx"], r["event"]) for r in rows] == [(t, n) for t, n, _ in expected]


def test_audit_of_a_stranger_is_empty(env):
    assert run_json(env, "audit", "0x000000000000000000000000000000000000dEaD") == []
