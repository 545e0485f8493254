// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/**
 * @title FalseReturnToken
 * @notice TEST ONLY. Once `failing` is set, `transfer` and `transferFrom` move nothing and
 * return false instead of reverting (like some pre-standard tokens, e.g. old ZRX / BAT behaviour).
 */
contract FalseReturnToken is ERC20 {
    /// @notice Whether transfers silently fail.
    bool public failing;

    constructor() ERC20("False Return Token", "FALSE") {}

    /// @notice Mints `amount` to `to`; anyone may call (tests only).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Turns silent failure on or off.
    function setFailing(bool failing_) external {
        failing = failing_;
    }

    /// @inheritdoc ERC20
    function transfer(address to, uint256 value) public override returns (bool) {
        if (failing) return false;
        return super.transfer(to, value);
    }

    /// @inheritdoc ERC20
    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        if (failing) return false;
        return super.transferFrom(from, to, value);
    }

    /// @inheritdoc ERC20
    function decimals() public pure override returns (uint8) {
        return 6;
    }
}
