"""Simulated manipulation environments (Meta-World on MuJoCo) and their scripted experts."""
