"""Revisions, oldest first; `veil cloud serve` upgrades to the newest on start."""
