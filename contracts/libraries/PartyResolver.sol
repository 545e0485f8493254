// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICareRegistry} from "../../interfaces/ICareRegistry.sol";

/**
 * @title PartyResolver
 * @notice `ICareRegistry.resolve`, hand-encoded for the hot paths of the ConsentRegistry (every consent check
 * and record anchor) and the ClaimEscrow (every party entry point).
 * @dev Internal only: inlined into its callers, never deployed.
 */
library PartyResolver {
    /// @dev `registry.resolve(account)`: the active role (as a word), party id, home account and current account
    /// of the party known by `account`. 36 bytes of arguments out and the four-word answer back, above the
    /// free-memory pointer (not allocated). A reverting call bubbles its revert data up, as a high-level call
    /// would; a short answer reads as nobody (all zero: role None, and no caller's current account).
    function resolve(ICareRegistry registry, address account)
        internal
        view
        returns (uint256 role, uint32 id, address home, address current)
    {
        bytes4 selector = ICareRegistry.resolve.selector;
        // Assembly: the call above; memory at and above the free-memory pointer is scratch until the next
        // allocation. The id and the addresses are masked to their widths.
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, selector)
            mstore(add(ptr, 0x04), account)
            if iszero(staticcall(gas(), registry, ptr, 0x24, ptr, 0x80)) {
                returndatacopy(ptr, 0, returndatasize())
                revert(ptr, returndatasize())
            }
            if gt(returndatasize(), 0x7f) {
                role := mload(ptr)
                id := and(mload(add(ptr, 0x20)), 0xffffffff)
                home := and(mload(add(ptr, 0x40)), 0xffffffffffffffffffffffffffffffffffffffff)
                current := and(mload(add(ptr, 0x60)), 0xffffffffffffffffffffffffffffffffffffffff)
            }
        }
    }
}
