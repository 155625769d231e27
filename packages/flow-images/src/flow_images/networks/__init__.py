"""Image networks: a small U-Net and a small DiT, as velocity and average-velocity fields."""

from flow_images.networks.dit import DiTAverageVelocity, DiTVelocity
from flow_images.networks.unet import UNetAverageVelocity, UNetVelocity

__all__ = ["DiTAverageVelocity", "DiTVelocity", "UNetAverageVelocity", "UNetVelocity"]
