"""Small CNN feature networks that ship with the package, for feature-space image metrics."""

from flow_images.features.net import FeatureNet
from flow_images.features.weights import FEATURE_NETS, feature_net_info, load_feature_net

__all__ = ["FEATURE_NETS", "FeatureNet", "feature_net_info", "load_feature_net"]
