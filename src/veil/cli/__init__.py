"""veil.cli"""
