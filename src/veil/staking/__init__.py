"""veil.staking: the Vault (vPHA) as a holder uses it; a domain over `veil.chain`."""
