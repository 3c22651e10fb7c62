// SPDX-License-Identifier: MIT
// Reference side of bench/gas.py: an ERC-4626 vault with ERC20Votes on a timestamp
// clock and the same decimals offset as veil's vPHA, built from OpenZeppelin 5.x.
pragma solidity ^0.8.27;

import {IERC20, IERC20Metadata, ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC4626} from "@openzeppelin/contracts/token/ERC20/extensions/ERC4626.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

contract ReferenceVault is ERC4626, ERC20Permit, ERC20Votes {
    uint8 private immutable OFFSET;

    constructor(IERC20 asset_, uint8 offset)
        ERC20("Staked PHA", "vPHA")
        ERC20Permit("Staked PHA")
        ERC4626(asset_)
    {
        OFFSET = offset;
    }

    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    function _decimalsOffset() internal view override returns (uint8) {
        return OFFSET;
    }

    function decimals() public view override(ERC20, ERC4626) returns (uint8) {
        return super.decimals();
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
