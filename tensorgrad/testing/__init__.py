"""``tg.testing``: hypothesis strategies and helpers for property-based gradient tests.

Use them to test your own ops the way tensorgrad tests its own (see the README).
"""
