"""veil.migration"""
