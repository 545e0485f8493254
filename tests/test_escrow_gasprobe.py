import pytest
from support.escrow import *


@pytest.fixture(scope="module")
def world(escrow, usdc, consent, records, provider, insurer, patient):
    grant(consent, patient, insurer, bit(HPAYMT), bit(BILLING))
    grant(consent, patient, provider, bit(TREAT) | bit(HPAYMT), 0x7FF)
    escrow.setTerms(terms(), {"from": insurer})
    enrol(escrow, insurer, patient)
    fund(escrow, usdc, insurer, 10**6 * USD)
    return escrow


def test_gas(world, escrow, usdc, records, provider, insurer, patient):
    recs = [anchor(records, provider, patient, f"r{i}") for i in range(6)]
    tx = escrow.submitClaim(submission(h("c0"), patient, insurer, 100 * USD, [recs[0]]), {"from": provider})
    print("submit first", tx.gas_used)
    tx = escrow.adjudicate(provider, h("c0"), 0, 100 * USD, no_share(), [], {"from": insurer})
    print("approve first credit", tx.gas_used)
    tx = escrow.withdraw(50 * USD, {"from": provider})
    print("withdraw first (0 token bal)", tx.gas_used)
    tx = escrow.withdraw(10 * USD, {"from": provider})
    print("withdraw steady", tx.gas_used)
    tx = escrow.submitClaim(submission(h("c1"), patient, insurer, 100 * USD, [recs[1]]), {"from": provider})
    print("submit steady", tx.gas_used)
    tx = escrow.adjudicate(provider, h("c1"), 0, 100 * USD, no_share(), [], {"from": insurer})
    print("approve steady", tx.gas_used)
    tx = escrow.withdrawAll({"from": provider})
    print("withdrawAll", tx.gas_used)
    tx = escrow.submitClaim(submission(h("c2"), patient, insurer, 100 * USD, [recs[2]]), {"from": provider})
    tx = escrow.adjudicate(provider, h("c2"), 0, 100 * USD, no_share(), [], {"from": insurer})
    print("approve after withdrawAll", tx.gas_used)
    escrow.setTerms(terms(auto_max=500 * USD, auto_classes=0x7FF, service_min=0, service_max=1000), {"from": insurer})
    tx = escrow.submitClaim(submission(h("c3"), patient, insurer, 100 * USD, [recs[3]]), {"from": provider})
    print("auto submit credit", tx.gas_used, tx.events.keys())
    escrow.setPushPayments(True, {"from": provider})
    tx = escrow.submitClaim(submission(h("c4"), patient, insurer, 100 * USD, [recs[4]]), {"from": provider})
    print("auto submit push", tx.gas_used, tx.events.keys())


def test_trace(world, escrow, usdc, records, provider, insurer, patient):
    rec = anchor(records, provider, patient, "t")
    rec2 = anchor(records, provider, patient, "t2")
    escrow.submitClaim(submission(h("c0"), patient, insurer, 100 * USD, [rec2]), {"from": provider})
    tx = escrow.submitClaim(submission(h("c1"), patient, insurer, 100 * USD, [rec]), {"from": provider})
    prof(tx)


def prof(tx):
    from brownie import web3
    from collections import Counter
    res = web3.provider.make_request("debug_traceTransaction", [tx.txid, {"disableStorage": True, "disableMemory": True, "disableStack": False}])
    logs = res["result"]["structLogs"]
    toi = lambda v: int(v, 16) if isinstance(v, str) and v.startswith("0x") else int(v)
    for l in logs:
        l["gas"] = toi(l["gas"]); l["gasCost"] = toi(l["gasCost"])
    by = Counter()
    calls = []
    for i, l in enumerate(logs):
        if l["depth"] == 1:
            op = l["op"]
            if op in ("STATICCALL", "CALL"):
                # cost = gas before - gas after return at depth 1
                j = i + 1
                while logs[j]["depth"] != 1:
                    j += 1
                cost = l["gas"] - logs[j]["gas"]
                calls.append((op, cost, l["stack"][-2]))
                by["CALLS"] += cost
            else:
                by[op] += l["gasCost"]
    data = bytes.fromhex(tx.input[2:])
    cd = sum(16 if b else 4 for b in data)
    print("calldata", cd, "len", len(data))
    print("calls", calls)
    print(sorted(by.items(), key=lambda kv: -kv[1])[:15])
    print("total exec", sum(by.values()), "gas_used", tx.gas_used)


def test_trace_approve(world, escrow, usdc, records, provider, insurer, patient):
    rec = anchor(records, provider, patient, "t")
    rec2 = anchor(records, provider, patient, "t2")
    escrow.submitClaim(submission(h("c0"), patient, insurer, 100 * USD, [rec2]), {"from": provider})
    escrow.submitClaim(submission(h("c1"), patient, insurer, 100 * USD, [rec]), {"from": provider})
    escrow.adjudicate(provider, h("c0"), 0, 100 * USD, no_share(), [], {"from": insurer})
    tx = escrow.adjudicate(provider, h("c1"), 0, 100 * USD, no_share(), [], {"from": insurer})
    prof(tx)
