"""Behaviour cloning by mean-squared error, as an objective of the registry."""
