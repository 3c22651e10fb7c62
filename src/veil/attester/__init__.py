"""veil.attester"""
