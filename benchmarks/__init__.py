"""The benchmarks behind `make bench` (issue 7): gas from receipts and throughput, with the floors
and targets they are judged against. `scripts/bench.py` is the brownie entry point; the off-chain
pipeline part is also runnable alone as `scripts/bench_offchain.py`. Not part of the `medledger`
distribution: this package sits beside it and uses the SDK and the dev-chain kit (`medledger.testing`).

    floors      EVM prices, each operation's unavoidable cost (`SPECS`), `GasRow` and `measure`
    suite       the bench's parties (the kit's actor map) and the deployed `Suite`
    gas         `GasBench`: every operation of `SPECS` measured from its receipt
    throughput  anchoring, the off-chain pipeline, `medledger record put-batch` end to end
    report      `BenchConfig`, `run_bench`, the JSON reports and tables, `main`
    l2          every measured operation priced on Ethereum L1, an OP-stack L2 and Arbitrum (USD, plot)
    index       the event index: ingest vs raw eth_getLogs, audit trail and claim queue latency

Gas (reports/gas.json, reports/gas-detail.json): every figure is `gasUsed` from the receipt of a
real transaction sent through the SDK wrappers to a freshly deployed suite (`deploy_suite`), never
an estimate. Each operation also gets a *floor*: 21,000 + the calldata of the actual transaction
input (16 gas per non-zero byte, 4 per zero byte) + the state access the operation cannot avoid
whatever the implementation (EIP-2929/3529 prices: a new slot 22,100, a cold slot update 5,000, a
cold slot read 2,100, a cold call to another contract 2,600, ecrecover 3,000, a cleared slot's
4,800 refund capped at a fifth of the gas). Events, memory, ABI decoding and the implementation's
own book-keeping (locks, compact tables) are the distance between the floor and the measurement.

Throughput (reports/bench.json): one anchor per transaction through the SDK, records per second
anchored by Merkle batches from ready hashes, the off-chain pipeline alone, and `medledger record
put-batch` end to end as a subprocess; the two anchoring figures also on an Anvil the kit starts
(`medledger.testing.AnvilNode`).
"""
