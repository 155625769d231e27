"""A reader of NANOGrav's Feather pulsar files (one Arrow Feather file per pulsar).

Feather pulsar files are the interchange format of nanograv/discovery and enterprise >= 3.4.2
(``<anything>-<PSR>.feather``, e.g. ``v1p1_de440_pint_bipm2019-B1855+09.feather``): the timing
has already been done, so no PINT, clock files or ephemeris are needed. The layout read here:

* columns ``toas`` (barycentric, s), ``toaerrs`` (s), ``residuals`` (s), ``backend_flags``,
  and ``Mmat_0 ... Mmat_<m-1>``, the timing-model design matrix column by column;
* schema metadata ``json``: an object with ``name``, ``pos`` (unit vector to the pulsar) and
  optionally ``noisedict``, an enterprise-style noise dictionary (``<PSR>_<backend>_efac``,
  ``_log10_t2equad``, ``_log10_tnequad``, ``_log10_ecorr``) whose white noise is folded into
  the TOA errors as in :mod:`flow_physics.data.partim` (ECORR is not used).

Needs pyarrow (``pip install "flow-physics[partim]"``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from flow_physics.data.partim import (
    DAY,
    PartimArray,
    PartimError,
    _noise_json,
    _scaled_errors,
    ecorr_notes,
)
from flow_physics.data.pulsar import Pulsar

__all__ = ["is_feather_folder", "read_feather_folder"]

COLUMNS = ("toas", "toaerrs", "residuals", "backend_flags")


def is_feather_folder(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding ``.feather`` files."""
    root = Path(path)
    return root.is_dir() and any(root.glob("*.feather"))


def _read(path: Path) -> tuple[Pulsar, bool]:
    """One pulsar (TOAs still absolute) and whether its noise dictionary has ECORR."""
    from pyarrow import feather

    try:
        table = feather.read_table(str(path))
    except Exception as error:  # pyarrow raises several kinds on a bad file
        raise PartimError(f"{path}: not a readable Feather file ({error})") from error
    if missing := [c for c in COLUMNS if c not in table.column_names]:
        raise PartimError(f"{path}: no column(s) {missing}; expected {list(COLUMNS)}, Mmat_*")
    metadata = table.schema.metadata or {}
    try:
        meta: dict[str, Any] = json.loads(metadata[b"json"])
        name, position = str(meta["name"]), np.asarray(meta["pos"], dtype=np.float64)
    except (KeyError, ValueError, TypeError) as error:
        raise PartimError(
            f"{path}: schema metadata 'json' lacks a pulsar 'name' and 'pos' ({error})"
        ) from error
    design_columns = sorted(
        (c for c in table.column_names if re.fullmatch(r"Mmat_\d+", c)),
        key=lambda c: int(c.split("_")[1]),
    )
    if not design_columns:
        raise PartimError(f"{path}: no design-matrix columns Mmat_0, Mmat_1, ...")
    toas = table["toas"].to_numpy().astype(np.float64)
    design = np.stack([table[c].to_numpy() for c in design_columns], axis=1).astype(np.float64)
    norms = np.linalg.norm(design, axis=0)
    backends = table["backend_flags"].to_numpy().astype(str)
    noise = _noise_json(meta.get("noisedict") or {}, name)
    errors = _scaled_errors(
        table["toaerrs"].to_numpy().astype(np.float64), backends, noise, str(path)
    )
    order = np.argsort(toas)
    pulsar = Pulsar(
        name=name,
        toas=toas[order],
        toaerrs=errors[order],
        residuals=table["residuals"].to_numpy().astype(np.float64)[order],
        position=position / np.linalg.norm(position),
        design_matrix=(design[:, norms > 0] / norms[norms > 0])[order],
    )
    return pulsar, noise.has_ecorr


def _wrms(pulsar: Pulsar) -> float:
    """Weighted rms of the residuals (s): how well the pulsar is timed."""
    weights = 1.0 / pulsar.toaerrs**2
    return float(np.sqrt(np.sum(weights * pulsar.residuals**2) / np.sum(weights)))


def read_feather_folder(
    directory: str | Path, pulsars: int | Sequence[str] | None = None
) -> PartimArray:
    """Read a folder of Feather pulsar files.

    Args:
        directory: the folder.
        pulsars: all (None), the N best-timed (smallest weighted residual rms), or names.

    Returns:
        The pulsars with TOAs counted from a common origin, their span, and notes.

    Raises:
        PartimError: naming the file, for an unreadable file, a missing column or metadata,
            a repeated pulsar, a backend without noise values, or an unknown name asked for.
    """
    root = Path(directory)
    paths = sorted(root.glob("*.feather")) if root.is_dir() else []
    if not paths:
        raise PartimError(f"{root}: no .feather files; expected one Feather file per pulsar")
    read = [(*_read(path), path) for path in paths]
    by_name: dict[str, tuple[Pulsar, bool]] = {}
    for pulsar, has_ecorr, path in read:
        if pulsar.name in by_name:
            raise PartimError(f"{path}: pulsar {pulsar.name} is also in another Feather file")
        by_name[pulsar.name] = (pulsar, has_ecorr)
    if pulsars is None:
        chosen = list(by_name)
    elif isinstance(pulsars, int):
        if not 1 <= pulsars <= len(by_name):
            raise PartimError(f"{root}: pulsars={pulsars}; accepted: 1..{len(by_name)}")
        chosen = sorted(by_name, key=lambda n: _wrms(by_name[n][0]))[:pulsars]
    else:
        if missing := [n for n in pulsars if n not in by_name]:
            raise PartimError(f"{root}: no Feather file for {missing}; accepted: {sorted(by_name)}")
        chosen = list(pulsars)
    origin = math.floor(min(float(by_name[n][0].toas.min()) for n in chosen) / DAY) - 1
    array = []
    for name in chosen:
        pulsar = by_name[name][0]
        array.append(
            Pulsar(
                name=pulsar.name,
                toas=pulsar.toas - origin * DAY,
                toaerrs=pulsar.toaerrs,
                residuals=pulsar.residuals,
                position=pulsar.position,
                design_matrix=pulsar.design_matrix,
            )
        )
    tspan = max(float(p.toas.max()) for p in array) - min(float(p.toas.min()) for p in array)
    notes = ecorr_notes([n for n in chosen if by_name[n][1]])
    return PartimArray(array, tspan, float(origin), notes)
