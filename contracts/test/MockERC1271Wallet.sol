// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/**
 * @title MockERC1271Wallet
 * @notice Test-only contract wallet: a signature is valid if its one `owner` EOA signed the hash.
 * @dev With `badMagic` set it answers a wrong value even for good signatures, to prove the caller
 * checks the exact ERC-1271 magic value rather than mere success.
 */
contract MockERC1271Wallet is IERC1271 {
    /// @notice The EOA whose ECDSA signatures this wallet accepts.
    address public immutable owner;
    /// @notice Whether this wallet answers a non-magic value for every signature.
    bool public immutable badMagic;

    constructor(address owner_, bool badMagic_) {
        owner = owner_;
        badMagic = badMagic_;
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (badMagic) return 0xdeadbeef;
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        return err == ECDSA.RecoverError.NoError && recovered == owner ? IERC1271.isValidSignature.selector : bytes4(0);
    }
}
