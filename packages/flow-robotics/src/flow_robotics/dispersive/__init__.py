"""Dispersive regularisation of policy embeddings (DM1; Wang & He 2025, arXiv 2506.09027)."""
