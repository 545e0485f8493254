"""The end-to-end MedLedger scenario (grows with each contract)."""
from brownie import CareRegistry, accounts
from eth_utils import keccak


def main():
    admin, registrar, provider = accounts[0], accounts[1], accounts[2]
    care = CareRegistry.deploy(admin, {"from": admin})
    care.grantRole(care.REGISTRAR_ROLE(), registrar, {"from": admin})
    care.register(provider, 1, keccak(text="npi:demo"), {"from": registrar})
    print(f"CareRegistry deployed at {care.address}")
