"""ICP-Flow (Lin & Caesar, CVPR 2024): learning-free scene flow from clustered rigid ICP."""
