"""Helpers of tools/bench/images.py."""
