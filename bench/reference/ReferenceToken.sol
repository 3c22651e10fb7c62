// SPDX-License-Identifier: MIT
// Reference side of bench/gas.py: the same features as veil's PHA, built from
// OpenZeppelin 5.x (installed from npm, never committed). Not deployed anywhere real.
pragma solidity ^0.8.27;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

contract ReferenceToken is ERC20, ERC20Permit, ERC20Capped, Ownable {
    mapping(address => bool) public isMinter;

    constructor() ERC20("Phala", "PHA") ERC20Permit("Phala") ERC20Capped(1e27) Ownable(msg.sender) {}

    function setMinter(address minter, bool allowed) external onlyOwner {
        isMinter[minter] = allowed;
    }

    function mint(address to, uint256 amount) external {
        require(isMinter[msg.sender], "not a minter");
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Capped) {
        super._update(from, to, value);
    }
}
