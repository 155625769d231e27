"""Backbones shared by the norm and optimizer comparisons: the small causal transformer."""
