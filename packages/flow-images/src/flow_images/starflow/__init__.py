"""STARFlow: deep-shallow autoregressive flows in an autoencoder's latent space, with Gaussian
guidance (Gu et al. 2025, arXiv 2506.06276)."""

from flow_images.starflow.guidance import gaussian_rule

__all__ = ["gaussian_rule"]
