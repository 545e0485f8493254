"""Gas and throughput benchmarks (issue 7): `make bench`.

    brownie run scripts/bench.py --network medledger-ganache

Deploys a fresh suite on the brownie-launched Ganache with `deploy_suite`, measures every operation's
gasUsed from its receipt, then the anchoring, pipeline and end-to-end throughput (and the anchoring
figures again on an Anvil it starts and stops itself). Writes reports/gas.json, reports/gas-detail.json
and reports/bench.json and prints the tables. The work is done by the `benchmarks` package; sizes can be
changed with MEDLEDGER_BENCH_* variables (see `BenchConfig.from_env`).
"""
from brownie import web3

from benchmarks.report import main as run_bench


def main():
    return run_bench(web3.provider.endpoint_uri)
