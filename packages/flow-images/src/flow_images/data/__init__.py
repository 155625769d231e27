"""Image datasets that ship or that the user has: digits, photograph patches, a folder."""

from flow_images.data.load import DATASETS, SPLITS, load_dataset
from flow_images.data.types import ImageData

__all__ = ["DATASETS", "SPLITS", "ImageData", "load_dataset"]
