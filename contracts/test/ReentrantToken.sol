// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/**
 * @title ReentrantToken
 * @notice TEST ONLY. An ERC-777-style hooked token: once armed, every wallet-to-wallet transfer
 * calls `target` with `data` before moving the balance (so the re-entered contract sees
 * pre-transfer balances, the most dangerous ordering). The outcome of the re-entrant call is
 * recorded; with `bubble` set a failing re-entrant call makes the whole transfer revert.
 */
contract ReentrantToken is ERC20, ERC20Permit {
    /// @notice The contract re-entered by the hook (zero: hook disarmed).
    address public target;
    /// @notice The calldata sent to `target`.
    bytes public data;
    /// @notice Whether a failed re-entrant call reverts the transfer (true) or is only recorded (false).
    bool public bubble;
    /// @notice How many times the hook fired.
    uint256 public hookCalls;
    /// @notice Whether the last re-entrant call succeeded.
    bool public lastSuccess;
    /// @notice The return (or revert) data of the last re-entrant call.
    bytes public lastReturnData;

    bool private _inHook;

    constructor() ERC20("Reentrant Token", "REENT") ERC20Permit("Reentrant Token") {}

    /// @notice Mints `amount` to `to`; anyone may call (tests only).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Arms the hook: every later transfer calls `target_` with `data_` (zero target disarms).
    function arm(address target_, bytes calldata data_, bool bubble_) external {
        target = target_;
        data = data_;
        bubble = bubble_;
    }

    /// @inheritdoc ERC20
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @dev Fires the hook (not re-entrantly for itself), then moves the balance.
    function _update(address from, address to, uint256 value) internal override {
        if (target != address(0) && from != address(0) && to != address(0) && !_inHook) {
            _inHook = true;
            (bool ok, bytes memory ret) = target.call(data);
            _inHook = false;
            hookCalls += 1;
            lastSuccess = ok;
            lastReturnData = ret;
            if (!ok && bubble) {
                // Bubble the re-entered contract's revert data unchanged.
                assembly ("memory-safe") {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
        }
        super._update(from, to, value);
    }
}
