// SPDX-License-Identifier: MIT
// Reference side of bench/migration.py's claim gas: the Uniswap MerkleDistributor design
// (OpenZeppelin MerkleProof + BitMaps + ERC-20 transfer) over veil's leaf encoding.
// It checks no binding and no attestation: the floor a claim could cost.
pragma solidity ^0.8.27;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {BitMaps} from "@openzeppelin/contracts/utils/structs/BitMaps.sol";

contract ReferenceDistributor {
    using BitMaps for BitMaps.BitMap;

    IERC20 public immutable token;
    bytes32 public immutable root;
    BitMaps.BitMap private claimed;

    event Claimed(uint256 index, bytes32 account, address receiver, uint256 amount);

    constructor(IERC20 token_, bytes32 root_) {
        token = token_;
        root = root_;
    }

    function claim(
        uint256 index,
        bytes32 account,
        uint256 free,
        uint256 staked,
        address receiver,
        bytes32[] calldata proof
    ) external {
        require(!claimed.get(index), "already claimed");
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(index, account, free, staked))));
        require(MerkleProof.verifyCalldata(proof, root, leaf), "invalid proof");
        claimed.set(index);
        require(token.transfer(receiver, free), "transfer failed");
        emit Claimed(index, account, receiver, free);
    }
}
