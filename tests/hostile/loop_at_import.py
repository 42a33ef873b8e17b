"""Hangs while being imported."""
while True:
    pass
