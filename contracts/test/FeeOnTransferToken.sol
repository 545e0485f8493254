// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/**
 * @title FeeOnTransferToken
 * @notice TEST ONLY. Burns `feeBps` basis points (must be below 10,000) of every transfer (mints and burns are exempt),
 * so the recipient receives less than the sender sent.
 */
contract FeeOnTransferToken is ERC20 {
    /// @notice The fee, in basis points of the transferred value.
    uint256 public immutable feeBps;

    constructor(uint256 feeBps_) ERC20("Fee On Transfer Token", "FEE") {
        feeBps = feeBps_;
    }

    /// @notice Mints `amount` to `to`; anyone may call (tests only).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @inheritdoc ERC20
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @dev Burns the fee out of every wallet-to-wallet transfer.
    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) {
            super._update(from, to, value);
            return;
        }
        uint256 fee = (value * feeBps) / 10_000;
        super._update(from, address(0), fee);
        super._update(from, to, value - fee);
    }
}
