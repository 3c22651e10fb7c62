"""The on-chain escrow: per-second leases, price math, usage and statements."""
