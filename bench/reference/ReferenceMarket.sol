// SPDX-License-Identifier: MIT
// Reference side of bench/market.py: per-second leases in the design of Marlin Oyster's
// MarketV1 (a job per lease with its own balance, a per-second rate scaled by 1e12,
// settlement anyone may trigger that pays the provider straight away, and a prepaid
// shutdown window charged when the job opens). Written for the benchmark: no upgrade
// proxy, no roles, no provider registry, no rate revision; only the paths the bench
// measures. `jobSettleMany` is the batch a provider would send to collect from many jobs
// (MarketV1 itself has one job per call, which would cost a transaction each).
pragma solidity ^0.8.27;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

contract ReferenceMarket {
    using SafeERC20 for IERC20;

    uint256 public constant EXTRA_DECIMALS = 12;

    struct Job {
        string metadata;
        address owner;
        address provider;
        uint256 rate; // token units per second, times 10**EXTRA_DECIMALS
        uint256 balance;
        uint256 paidUntil; // payment is settled up to this timestamp
    }

    IERC20 public immutable token;
    uint256 public immutable shutdownWindow;
    mapping(bytes32 => Job) public jobs;
    uint256 public jobIndex;

    event JobOpened(
        bytes32 indexed job,
        string metadata,
        address indexed owner,
        address indexed provider,
        uint256 rate,
        uint256 balance,
        uint256 paidUntil
    );
    event JobSettled(bytes32 indexed job, uint256 amount);
    event JobDeposited(bytes32 indexed job, address indexed from, uint256 amount);
    event JobClosed(bytes32 indexed job);

    constructor(IERC20 token_, uint256 shutdownWindow_) {
        token = token_;
        shutdownWindow = shutdownWindow_;
    }

    function jobOpen(string calldata metadata, address provider, uint256 rate, uint256 amount)
        external
        returns (bytes32 job)
    {
        uint256 windowCost = _cost(rate, shutdownWindow);
        require(amount > windowCost, "not enough balance");
        uint256 index = jobIndex;
        jobIndex = index + 1;
        job = bytes32(index);
        uint256 paidUntil = block.timestamp + shutdownWindow;
        token.safeTransferFrom(msg.sender, address(this), amount);
        // The shutdown window is paid to the provider up front.
        jobs[job] = Job(metadata, msg.sender, provider, rate, amount - windowCost, paidUntil);
        token.safeTransfer(provider, windowCost);
        emit JobSettled(job, windowCost);
        emit JobOpened(job, metadata, msg.sender, provider, rate, amount - windowCost, paidUntil);
    }

    function jobSettle(bytes32 job) external {
        require(jobs[job].owner != address(0), "job not found");
        require(block.timestamp > jobs[job].paidUntil, "nothing to settle");
        _settle(job);
    }

    function jobSettleMany(bytes32[] calldata many) external {
        for (uint256 i = 0; i < many.length; i++) {
            bytes32 job = many[i];
            require(jobs[job].owner != address(0), "job not found");
            if (block.timestamp > jobs[job].paidUntil) _settle(job);
        }
    }

    function jobDeposit(bytes32 job, uint256 amount) external {
        require(jobs[job].owner != address(0), "job not found");
        require(amount > 0, "invalid amount");
        token.safeTransferFrom(msg.sender, address(this), amount);
        jobs[job].balance += amount;
        emit JobDeposited(job, msg.sender, amount);
    }

    function jobClose(bytes32 job) external {
        Job storage j = jobs[job];
        require(j.owner == msg.sender, "only job owner");
        if (block.timestamp > j.paidUntil) _settle(job);
        uint256 refund = j.balance;
        address owner = j.owner;
        delete jobs[job];
        if (refund > 0) token.safeTransfer(owner, refund);
        emit JobClosed(job);
    }

    function _settle(bytes32 job) internal {
        Job storage j = jobs[job];
        uint256 balance = j.balance;
        uint256 amount = _cost(j.rate, block.timestamp - j.paidUntil);
        if (amount > balance) amount = balance;
        j.balance = balance - amount;
        j.paidUntil = block.timestamp;
        token.safeTransfer(j.provider, amount);
        emit JobSettled(job, amount);
    }

    function _cost(uint256 rate, uint256 duration) internal pure returns (uint256) {
        return (rate * duration + 10 ** EXTRA_DECIMALS - 1) / 10 ** EXTRA_DECIMALS;
    }
}
