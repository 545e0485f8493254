// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/**
 * @title ReentrantToken
 * @notice TEST ONLY. An ERC-777-style hooked token: once armed, every wallet-to-wallet transfer
 * calls `target` with each configured calldata before moving the balance (so the re-entered
 * contract sees pre-transfer balances, the most dangerous ordering). The outcome of each
 * re-entrant call of the latest firing is recorded; with `bubble` set, the first failing
 * re-entrant call makes the whole transfer revert with that call's revert data.
 */
contract ReentrantToken is ERC20, ERC20Permit {
    /// @notice The contract re-entered by the hook (zero: hook disarmed).
    address public target;
    /// @notice Whether a failed re-entrant call reverts the transfer (true) or is only recorded (false).
    bool public bubble;
    /// @notice How many times the hook fired.
    uint256 public hookCalls;

    bytes[] private _calls;
    bool[] private _successes;
    bytes[] private _returns;
    bool private _inHook;

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

    /// @notice How many re-entrant calls the latest firing made.
    function resultCount() external view returns (uint256) {
        return _successes.length;
    }

    /// @notice Outcome of re-entrant call `index` of the latest firing.
    function result(uint256 index) external view returns (bool success, bytes memory returnData) {
        return (_successes[index], _returns[index]);
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
        if (target != address(0) && from != address(0) && to != address(0) && !_inHook) {
            _inHook = true;
            hookCalls += 1;
            delete _successes;
            delete _returns;
            for (uint256 i; i < _calls.length; ++i) {
                (bool ok, bytes memory ret) = target.call(_calls[i]);
                _successes.push(ok);
                _returns.push(ret);
                if (!ok && bubble) {
                    // Bubble the re-entered contract's revert data unchanged.
                    assembly ("memory-safe") {
                        revert(add(ret, 0x20), mload(ret))
                    }
                }
            }
            _inHook = false;
        }
        super._update(from, to, value);
    }
}
