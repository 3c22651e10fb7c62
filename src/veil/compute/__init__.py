"""veil.compute"""
