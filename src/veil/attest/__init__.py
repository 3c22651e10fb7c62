"""veil.attest"""
