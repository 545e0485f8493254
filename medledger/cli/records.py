"""(commands added with the contract)."""
