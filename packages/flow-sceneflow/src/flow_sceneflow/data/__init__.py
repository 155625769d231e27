"""Scan pairs: the seeded synthetic LiDAR generator and loaders for users' files."""
