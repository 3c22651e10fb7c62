"""Compute rewards: hourly epochs from signed heartbeats, settled by one Merkle root."""
