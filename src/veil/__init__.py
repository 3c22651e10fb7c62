"""veil: confidential AI compute on an Ethereum L2, and the parachain migration toolkit."""

__version__ = "0.1.0"
