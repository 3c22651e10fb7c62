// SPDX-License-Identifier: MIT
// Reference side of bench/gas.py: OpenZeppelin's TimelockController, deployed as is.
pragma solidity ^0.8.27;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
