"""The shipped feature networks: ``features/weights/<name>.safetensors``.

Each file holds the state dict of a :class:`~flow_images.features.net.FeatureNet` and, in the
safetensors metadata under the key ``info``, a JSON object with its architecture, training
details and measured accuracies (written by ``tools/train_feature_nets.py``). Nothing is
unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import load_file, save_file

from flow_core.errors import ConfigError, FlowError
from flow_images.features.net import FeatureNet

__all__ = [
    "FEATURE_NETS",
    "feature_net_info",
    "load_feature_net",
    "save_feature_net",
    "weights_path",
]

FEATURE_NETS = ("digits", "patches")
WEIGHTS_DIR = Path(__file__).parent / "weights"


def weights_path(name: str) -> Path:
    """Where the weights of feature network ``name`` ship."""
    if name not in FEATURE_NETS:
        raise ConfigError(f"unknown feature network {name!r}; accepted: {', '.join(FEATURE_NETS)}")
    return WEIGHTS_DIR / f"{name}.safetensors"


def feature_net_info(name: str) -> dict[str, Any]:
    """Architecture, training details and measured accuracies of feature network ``name``."""
    path = weights_path(name)
    if not path.is_file():
        raise FlowError(
            f"feature network weights {str(path)!r} are missing; "
            "run tools/train_feature_nets.py to create them"
        )
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if "info" not in metadata:
        raise FlowError(f"{str(path)!r} has no 'info' metadata; it was not written by this package")
    info: dict[str, Any] = json.loads(metadata["info"])
    return info


def load_feature_net(name: str) -> FeatureNet:
    """Feature network ``name`` (``digits`` or ``patches``), frozen and in eval mode."""
    info = feature_net_info(name)
    net = FeatureNet(info["in_channels"], info["num_classes"], info["widths"])
    net.load_state_dict(load_file(str(weights_path(name))))
    net.eval()
    net.requires_grad_(False)
    return net


def save_feature_net(net: FeatureNet, path: Path, info: dict[str, Any]) -> None:
    """Write ``net``'s weights with ``info`` (plus its architecture) as safetensors metadata."""
    full = {
        **info,
        "in_channels": net.in_channels,
        "num_classes": net.num_classes,
        "widths": list(net.widths),
    }
    tensors = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    save_file(tensors, str(path), metadata={"info": json.dumps(full, sort_keys=True)})
