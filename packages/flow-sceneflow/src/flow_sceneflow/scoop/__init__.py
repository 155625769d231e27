"""SCOOP (Lang et al., CVPR 2023): self-supervised correspondence and test-time refinement."""
