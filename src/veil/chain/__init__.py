"""veil.chain"""
