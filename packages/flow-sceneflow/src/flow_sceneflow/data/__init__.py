"""Data: scan pairs (the seeded synthetic LiDAR generator, loaders for users' files) and optical
image pairs (bundled, warped by known fields, or a user's files)."""
