"""veil.network: the domains composed into one deployed network (genesis, handover).

The production path lives here and funds nobody; the devnet adds its demo accounts from
`veil.devnet`, which this package never imports.
"""
