"""The verifying client for veil's confidential AI gateway."""
