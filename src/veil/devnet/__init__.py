"""veil.devnet: the embedded anvil devnet, its public demo accounts, time travel and the demo.

A program over the library: only the CLI (and tests) import it; the library never does.
"""
