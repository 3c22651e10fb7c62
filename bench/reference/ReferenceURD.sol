// SPDX-License-Identifier: MIT
// Reference side of bench/rewards_gas.py: a cumulative-root rewards distributor in the
// design of Morpho's Universal Rewards Distributor (written for this bench, not copied).
// An updater submits a root (with an IPFS hash of the distribution); after a timelock
// anyone accepts it; each account claims `claimable - claimed[account][reward]` against
// the current root, where claimable is its cumulative amount. Leaves are OpenZeppelin
// standard-tree leaves of (address account, address reward, uint256 claimable).
// Anyone may claim on an account's behalf; nothing is signed by a threshold, and the
// contract does not check that a root is covered by the tokens it holds.
pragma solidity ^0.8.27;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

contract ReferenceURD {
    using SafeERC20 for IERC20;

    struct PendingRoot {
        bytes32 root;
        bytes32 ipfsHash;
        uint256 validAt;
    }

    address public owner;
    uint256 public timelock;
    bytes32 public root;
    bytes32 public ipfsHash;
    PendingRoot public pendingRoot;
    mapping(address => bool) public isUpdater;
    mapping(address => mapping(address => uint256)) public claimed;

    event RootSubmitted(bytes32 indexed root, bytes32 ipfsHash, uint256 validAt);
    event RootSet(bytes32 indexed root, bytes32 ipfsHash);
    event PendingRootRevoked(address indexed by);
    event Claimed(address indexed account, address indexed reward, uint256 amount);

    modifier onlyUpdater() {
        require(isUpdater[msg.sender] || msg.sender == owner, "not updater");
        _;
    }

    constructor(address owner_, uint256 timelock_) {
        owner = owner_;
        timelock = timelock_;
    }

    function setUpdater(address updater, bool allowed) external {
        require(msg.sender == owner, "not owner");
        isUpdater[updater] = allowed;
    }

    /// Submit a new root: it becomes pending for `timelock` seconds (at once if zero).
    function submitRoot(bytes32 newRoot, bytes32 newIpfsHash) external onlyUpdater {
        if (timelock == 0) {
            root = newRoot;
            ipfsHash = newIpfsHash;
            emit RootSet(newRoot, newIpfsHash);
            return;
        }
        uint256 validAt = block.timestamp + timelock;
        pendingRoot = PendingRoot(newRoot, newIpfsHash, validAt);
        emit RootSubmitted(newRoot, newIpfsHash, validAt);
    }

    /// Anyone: make the pending root current once its timelock has passed.
    function acceptRoot() external {
        PendingRoot memory pending = pendingRoot;
        require(pending.validAt != 0, "no pending root");
        require(block.timestamp >= pending.validAt, "timelock not expired");
        root = pending.root;
        ipfsHash = pending.ipfsHash;
        delete pendingRoot;
        emit RootSet(pending.root, pending.ipfsHash);
    }

    /// An updater or the owner: drop the pending root.
    function revokePendingRoot() external onlyUpdater {
        require(pendingRoot.validAt != 0, "no pending root");
        delete pendingRoot;
        emit PendingRootRevoked(msg.sender);
    }

    /// Pay `claimable - claimed` of `reward` to `account` (anyone may send it).
    function claim(address account, address reward, uint256 claimable, bytes32[] calldata proof)
        external
        returns (uint256 amount)
    {
        require(root != bytes32(0), "no root");
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, reward, claimable))));
        require(MerkleProof.verifyCalldata(proof, root, leaf), "invalid proof");
        uint256 already = claimed[account][reward];
        require(claimable > already, "claimable too low");
        amount = claimable - already;
        claimed[account][reward] = claimable;
        IERC20(reward).safeTransfer(account, amount);
        emit Claimed(account, reward, amount);
    }
}
