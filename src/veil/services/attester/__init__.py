"""The attester service: verify, then sign; publish what was verified."""
