"""veil.substrate"""
