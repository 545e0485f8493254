// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/**
 * @title MedLedgerTimelock
 * @notice Never deployed: it anchors OpenZeppelin's TimelockController (5.4.0) in the project, so that the
 * build keeps its artifact (build/contracts/TimelockController.json). `medledger deploy` deploys that
 * unchanged TimelockController as the governor (docs/DEPLOY.md, docs/OPERATIONS.md).
 */
abstract contract MedLedgerTimelock is TimelockController {}
