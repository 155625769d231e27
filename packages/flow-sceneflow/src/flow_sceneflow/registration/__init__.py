"""Rigid registration: batched weighted Kabsch and batched point-to-point ICP in torch."""
