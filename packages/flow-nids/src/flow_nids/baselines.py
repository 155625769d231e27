"""Tree baselines on the same features and split as FlowTransformer.

scikit-learn's RandomForestClassifier (Breiman 2001) and HistGradientBoostingClassifier (in
the style of LightGBM, Ke et al. 2017), the usual baselines on NetFlow v2 (Sarhan et al.
2021, arXiv:2101.11315). Each flow is classified from its own preprocessed features (numeric
scaled, categorical codes as numbers) — no window — with balanced class weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flow_nids.data.preprocess import EncodedFlows

__all__ = ["BASELINES", "make_baseline", "tree_features"]

BASELINES = ("random-forest", "hist-gradient-boosting")


def tree_features(flows: EncodedFlows, rows: np.ndarray) -> np.ndarray:
    """The preprocessed features of ``rows``, side by side: (N, F + C)."""
    return np.concatenate([flows.numeric[rows], flows.categorical[rows].astype(np.float32)], 1)


def make_baseline(name: str, seed: int, trees: int = 100) -> Any:
    """An unfitted classifier ``name`` from :data:`BASELINES`."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    if name == "random-forest":
        return RandomForestClassifier(
            n_estimators=trees, class_weight="balanced", random_state=seed, n_jobs=1
        )
    if name == "hist-gradient-boosting":
        return HistGradientBoostingClassifier(class_weight="balanced", random_state=seed)
    raise ValueError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
