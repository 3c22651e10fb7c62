"""veil.governance: the Governor and Timelock as a client uses them; a domain over `veil.chain`."""
