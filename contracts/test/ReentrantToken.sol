// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/**
 * @title ReentrantToken
 * @notice TEST ONLY. An ERC-777-style hooked token: once armed, every wallet-to-wallet transfer
 * calls `target` with each configured calldata before moving the balance (so the re-entered
 * contract sees pre-transfer balances, the most dangerous ordering). Each re-entrant call's outcome
 * is emitted as {HookCall}; with `bubble` set, the first failing re-entrant call makes the whole
 * transfer revert with that call's revert data. Results are events, not storage, so the hook stays
 * cheap enough to run inside a gas-capped push payment.
 */
contract ReentrantToken is ERC20, ERC20Permit {
    /// @notice Re-entrant call `index` of a hook firing returned `success` with `returnData`.
    event HookCall(uint256 index, bool success, bytes returnData);

    /// @notice The contract re-entered by the hook (zero: hook disarmed).
    address public target;
    /// @notice Whether a failed re-entrant call reverts the transfer (true) or is only recorded (false).
    bool public bubble;

    bytes[] private _calls;
    uint256 private _hookState = 1; // 1 idle, 2 firing (never zero: cheap to flip)

    constructor() ERC20("Reentrant Token", "REENT") ERC20Permit("Reentrant Token") {}

    /// @notice Mints `amount` to `to`; anyone may call (tests only).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Arms the hook: every later transfer calls `target_` with each of `calls_` in turn
    /// (a zero target disarms it).
    function arm(address target_, bytes[] calldata calls_, bool bubble_) external {
        target = target_;
        bubble = bubble_;
        delete _calls;
        for (uint256 i; i < calls_.length; ++i) {
            _calls.push(calls_[i]);
        }
    }

    /// @notice Burns every unit of gas it is given (a griefing payee / hook stand-in).
    function spin() external pure {
        // Loops until the call runs out of gas.
        while (true) {}
    }

    /// @inheritdoc ERC20
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @dev Fires the hook (never re-entrantly for itself), then moves the balance.
    function _update(address from, address to, uint256 value) internal override {
        address hooked = target;
        if (hooked != address(0) && from != address(0) && to != address(0) && _hookState == 1) {
            _hookState = 2;
            uint256 count = _calls.length;
            for (uint256 i; i < count; ++i) {
                (bool ok, bytes memory ret) = hooked.call(_calls[i]);
                emit HookCall(i, ok, ret);
                if (!ok && bubble) {
                    // Bubble the re-entered contract's revert data unchanged.
                    assembly ("memory-safe") {
                        revert(add(ret, 0x20), mload(ret))
                    }
                }
            }
            _hookState = 1;
        }
        super._update(from, to, value);
    }
}
