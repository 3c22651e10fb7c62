"""The fixed `now` each real TEE fixture verifies at (../shared/fixtures/tee/README.md).

Kept out of conftest.py so test modules can import the values by a unique module name:
`from conftest import ...` picks whichever conftest pytest loaded last.
"""

TDX_NOW = 1750331763
TDX_STALE_NOW = 1790000000
OUTDATED_NOW = 1771415931
SGX_NOW = 1750334171
NEAR_NOW = 1756802519
