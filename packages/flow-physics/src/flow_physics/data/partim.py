"""A reader of pulsar-timing folders (``.par`` timing models, ``.tim`` TOAs, noise files).

The timing package is PINT (Luo et al. 2021, arXiv 2012.00074), run fully offline: nothing is
downloaded at run time. PINT needs two kinds of local files, which this reader looks for and
fails clearly without:

* **clock files** (observatory clocks, GPS, ``tai2tt_bipm*.clk``) in the directory
  ``clock_dir`` or ``$PINT_CLOCK_OVERRIDE``. A one-time copy, done at install time::

      pip download --no-deps pint-pulsar==0.8.8 -d /tmp/pint088
      python -m zipfile -e /tmp/pint088/pint_pulsar-0.8.8-py3-none-any.whl /tmp/pint088/wheel
      export PINT_CLOCK_OVERRIDE=/tmp/pint088/wheel/pint/data/runtime

  (the last PINT release that carried its clock files, valid to 2022), or a local copy of the
  IPTA ``pulsar-clock-corrections`` repository with its files in one directory.
* **the solar-system ephemeris** the par file names (``EPHEM DE421``) as ``de421.bsp``, in
  ``clock_dir`` or from the ``skyfield-data`` package (``pip install skyfield-data``, which
  ships ``de421.bsp``).

While reading, astropy's network access is switched off, so a file PINT would otherwise
download raises :class:`PartimError` saying what to install or set. Two PINT 1.x behaviours
are worked around: its global clock index (normally downloaded) is seeded empty in a private
astropy cache, and its absolute-phase reference TOA, built with PINT's default BIPM version
whatever the data use, is served the newest BIPM file present (it fixes only a constant phase,
which the timing model's offset absorbs). PINT's log is set to level WARNING (its default
prints every step at DEBUG).

Per pulsar the reader produces a :class:`~flow_physics.data.pulsar.Pulsar`: barycentric TOAs
in s from a common origin (the day before the array's earliest TOA), the residuals of the par
file's timing model, the TOA errors with the noise file's white noise folded in, the
timing-model design matrix (columns scaled to unit norm), and the unit vector to the pulsar.
The residuals are not refitted: a released par file is already the fit, and the likelihood
marginalises the linearised timing model analytically, so a further least-squares step (a
shift along the design matrix's columns) would not change ``ln L``.

Noise files (optional, matched by pulsar name): NANOGrav 9-yr's ``<PSR>_noise.txt``
(Arzoumanian et al. 2016, arXiv 1508.03024) with lines ``efac-<backend> F``,
``equad-<backend> log10 Q``, ``jitter_q-<backend> log10 J``, ``RN-Amplitude``,
``RN-spectral-index``; or an enterprise-style JSON dictionary with keys
``<PSR>_<backend>_efac``, ``_log10_t2equad``, ``_log10_tnequad`` (or ``_log10_equad``) and
``_log10_ecorr``. Backends are the TOAs' ``-f`` flags. The white-noise variance of a TOA with
error ``s`` is ``efac^2 (s^2 + t2equad^2) + tnequad^2``; NG9's ``equad`` is the
added-in-quadrature (``tnequad``) kind of the PAL2 analysis that produced those files.
**ECORR (jitter) is read and not used**: the likelihood's white noise is diagonal, so the
epoch-correlated jitter is left out (reported in :attr:`PartimArray.notes`); the red-noise
values in the noise files are not used either (the models fit each pulsar's red noise).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flow_core.errors import ConfigError
from flow_physics.data.pulsar import Pulsar

__all__ = [
    "PartimArray",
    "PartimError",
    "PintPulsar",
    "is_partim_folder",
    "pint_timing",
    "read_partim",
    "to_pulsar",
]

DAY = 86400.0
NAME_KEYS = ("PSRJ", "PSR", "PSRB")


class PartimError(ConfigError):
    """A par/tim folder, one of its files, or PINT's offline data is missing or malformed."""


@dataclass(frozen=True)
class PartimArray:
    """Pulsars read from a par/tim folder.

    Attributes:
        pulsars: in the order asked for (best-timed first when chosen by count).
        tspan: last minus first TOA over the pulsars read, in s.
        origin_mjd: the MJD the pulsars' ``toas`` count from.
        notes: what was read but not used (ECORR), one line per kind.
    """

    pulsars: list[Pulsar]
    tspan: float
    origin_mjd: float
    notes: list[str]


@dataclass(frozen=True)
class _Files:
    """One pulsar's files: its par and tim file and, where present, its noise file."""

    name: str
    par: Path
    tim: Path
    noise: Path | None
    tres_us: float


def is_partim_folder(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding ``.par`` or ``.tim`` files."""
    root = Path(path)
    return root.is_dir() and (any(root.glob("*.par")) or any(root.glob("*.tim")))


def _par_header(par: Path) -> tuple[str, float]:
    """The pulsar's name and the par file's post-fit rms ``TRES`` (us; inf when absent)."""
    try:
        lines = par.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as error:
        raise PartimError(f"{par}: unreadable ({error})") from error
    fields: dict[str, str] = {}
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] in (*NAME_KEYS, "TRES"):
            fields.setdefault(parts[0], parts[1])
    name = next((fields[key] for key in NAME_KEYS if key in fields), None)
    if name is None:
        raise PartimError(f"{par}: no pulsar name; expected a line 'PSR <name>' or 'PSRJ <name>'")
    try:
        tres = float(fields.get("TRES", "inf"))
    except ValueError as error:
        raise PartimError(f"{par}: TRES {fields['TRES']!r} is not a number") from error
    return name, tres


def _pair(root: Path) -> list[_Files]:
    """Match each par file with its tim file (same stem before the first dot, or a tim file
    named after the pulsar) and its noise file; unmatched files raise."""
    pars = sorted(root.glob("*.par"))
    tims = sorted(root.glob("*.tim"))
    if not pars:
        raise PartimError(f"{root}: no .par files; expected one .par and one .tim per pulsar")
    found: list[_Files] = []
    used: set[Path] = set()
    for par in pars:
        name, tres = _par_header(par)
        stem = par.name.split(".")[0]
        candidates = [t for t in tims if t.name.split(".")[0] == stem] or [
            t for t in tims if t.name.startswith(name)
        ]
        if len(candidates) != 1:
            raise PartimError(
                f"{par}: {len(candidates)} matching .tim files "
                f"({', '.join(t.name for t in candidates) or 'none'}); expected one named "
                f"{stem}.tim or starting with {name}"
            )
        noise = sorted(root.glob(f"{name}*noise*.txt"))
        found.append(_Files(name, par, candidates[0], noise[0] if noise else None, tres))
        used.add(candidates[0])
    if unmatched := sorted(set(tims) - used):
        raise PartimError(
            f"{unmatched[0]}: a .tim file without a .par file; expected pairs "
            f"({len(unmatched)} unmatched in {root})"
        )
    names = [f.name for f in found]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise PartimError(f"{root}: several .par files for pulsar(s) {repeated}")
    return found


def _choose(files: list[_Files], pulsars: int | Sequence[str] | None, root: Path) -> list[_Files]:
    """All pulsars, the ``pulsars`` best-timed ones (smallest ``TRES``), or those named."""
    if pulsars is None:
        return files
    if isinstance(pulsars, int):
        if not 1 <= pulsars <= len(files):
            raise PartimError(f"{root}: pulsars={pulsars}; accepted: 1..{len(files)}")
        return sorted(files, key=lambda f: (f.tres_us, f.name))[:pulsars]
    by_name = {f.name: f for f in files}
    if missing := [n for n in pulsars if n not in by_name]:
        raise PartimError(f"{root}: no par file for {missing}; accepted: {sorted(by_name)}")
    return [by_name[n] for n in pulsars]


@dataclass(frozen=True)
class _WhiteNoise:
    """Per-backend white noise of one pulsar (s for the quadrature terms)."""

    efac: dict[str, float]
    t2equad: dict[str, float]
    tnequad: dict[str, float]
    has_ecorr: bool


def _noise_txt(path: Path) -> _WhiteNoise:
    """NANOGrav 9-yr's ``<PSR>_noise.txt`` (``efac-<be>``, ``equad-<be>`` as log10 s)."""
    efac: dict[str, float] = {}
    equad: dict[str, float] = {}
    has_ecorr = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts or line.startswith("#"):
            continue
        try:
            key, value = parts[0], float(parts[1])
        except (IndexError, ValueError) as error:
            raise PartimError(
                f"{path}:{number}: expected '<key> <number>', got {line!r}"
            ) from error
        kind, _, backend = key.partition("-")
        if kind == "efac":
            efac[backend] = value
        elif kind == "equad":
            equad[backend] = 10.0**value
        elif kind == "jitter_q":
            has_ecorr = True
    return _WhiteNoise(efac, {}, equad, has_ecorr)


def _noise_json(values: dict[str, Any], name: str) -> _WhiteNoise:
    """An enterprise-style noise dictionary's entries for pulsar ``name``."""
    efac: dict[str, float] = {}
    t2: dict[str, float] = {}
    tn: dict[str, float] = {}
    has_ecorr = False
    pattern = re.compile(
        rf"^{re.escape(name)}_(.+)_(efac|log10_t2equad|log10_tnequad|log10_equad|log10_ecorr)$"
    )
    for key, value in values.items():
        match = pattern.match(key)
        if match is None:
            continue
        backend, kind = match.groups()
        if kind == "efac":
            efac[backend] = float(value)
        elif kind == "log10_t2equad":
            t2[backend] = 10.0 ** float(value)
        elif kind in ("log10_tnequad", "log10_equad"):
            tn[backend] = 10.0 ** float(value)
        else:
            has_ecorr = True
    return _WhiteNoise(efac, t2, tn, has_ecorr)


def _json_noise(root: Path) -> dict[str, Any]:
    """Every JSON noise dictionary of the folder, merged."""
    merged: dict[str, Any] = {}
    for path in sorted(root.glob("*.json")):
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise PartimError(f"{path}: not a readable JSON noise dictionary ({error})") from error
        if not isinstance(values, dict):
            raise PartimError(f"{path}: expected a JSON object of noise parameters")
        merged |= values
    return merged


def _scaled_errors(
    sigma: np.ndarray, backends: np.ndarray, noise: _WhiteNoise, where: str
) -> np.ndarray:
    """TOA errors with the white noise folded in; a backend the noise lacks raises."""
    given = set(noise.efac) | set(noise.t2equad) | set(noise.tnequad)
    if not given:
        return sigma
    if missing := sorted(set(backends.tolist()) - given):
        raise PartimError(
            f"{where}: no white noise for backend(s) {missing} (the TOAs' -f flags); "
            f"the noise file has {sorted(given)}"
        )
    efac = np.array([noise.efac.get(b, 1.0) for b in backends])
    t2 = np.array([noise.t2equad.get(b, 0.0) for b in backends])
    tn = np.array([noise.tnequad.get(b, 0.0) for b in backends])
    scaled: np.ndarray = np.sqrt(efac**2 * (sigma**2 + t2**2) + tn**2)
    return scaled


def _runtime_dir(clock_dir: str | Path | None) -> Path:
    """The clock-file directory, checked to hold clock files."""
    chosen = clock_dir if clock_dir is not None else os.environ.get("PINT_CLOCK_OVERRIDE")
    if not chosen:
        raise PartimError(
            "PINT's clock files are not set up and would be downloaded; set "
            "PINT_CLOCK_OVERRIDE (or clock_dir) to a directory of clock files, e.g. "
            "pint/data/runtime from the pint-pulsar==0.8.8 wheel (see flow_physics.data.partim)"
        )
    path = Path(chosen)
    if not any(path.glob("tai2tt_bipm*.clk")):
        raise PartimError(
            f"{path}: no tai2tt_bipm*.clk clock files; expected PINT's clock-file directory "
            "(pint/data/runtime of the pint-pulsar==0.8.8 wheel)"
        )
    return path


def _ephemeris(name: str, runtime: Path, par: Path) -> Path:
    """The ``<ephem>.bsp`` file from the clock directory or the skyfield-data package."""
    filename = f"{name.lower()}.bsp"
    places = [runtime / filename]
    try:
        import skyfield_data

        places.append(Path(skyfield_data.__file__).parent / "data" / filename)
    except ImportError:
        pass
    for place in places:
        if place.exists():
            return place
    raise PartimError(
        f"{par}: EPHEM {name} needs {filename}, found in none of "
        f"{[str(p) for p in places]}; put it in the clock directory, or for DE421 "
        "`pip install skyfield-data`"
    )


@contextmanager
def _offline(runtime: Path) -> Iterator[str]:
    """PINT without network: a private astropy cache seeded with an empty global clock index,
    the clock directory served through ``PINT_CLOCK_OVERRIDE`` (with PINT's default BIPM
    name aliased to the newest BIPM file present), astropy downloads switched off. Yields
    the BIPM version the TOAs use."""
    import astropy.utils.data as astropy_data
    import pint.logging
    from astropy.config import paths
    from astropy.utils import iers
    from pint.observatory import bipm_default
    from pint.observatory.global_clock_corrections import (
        global_clock_correction_url_base,
        index_name,
    )

    bipm = sorted(
        (p for p in runtime.glob("tai2tt_bipm*.clk") if p.stem[len("tai2tt_bipm") :].isdigit()),
        key=lambda p: p.stem,
    )
    version = bipm[-1].stem.removeprefix("tai2tt_") if bipm else bipm_default.lower()
    pint.logging.setup(level="WARNING", capturewarnings=False)
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="flow-pint-")))
        clocks = scratch / "clock"
        clocks.mkdir()
        for item in runtime.iterdir():
            (clocks / item.name).symlink_to(item.resolve())
        alias = clocks / f"tai2tt_{bipm_default.lower()}.clk"
        if not alias.exists() and bipm:
            alias.symlink_to(bipm[-1].resolve())
        stack.enter_context(paths.set_temp_cache(scratch))
        empty_index = scratch / "index.txt"
        empty_index.write_text("", encoding="utf-8")
        astropy_data.import_file_to_cache(
            global_clock_correction_url_base + index_name, str(empty_index)
        )
        stack.enter_context(astropy_data.conf.set_temp("allow_internet", False))
        stack.enter_context(iers.conf.set_temp("auto_download", False))
        previous = os.environ.get("PINT_CLOCK_OVERRIDE")
        os.environ["PINT_CLOCK_OVERRIDE"] = str(clocks)
        try:
            yield version.upper()
        finally:
            if previous is None:
                del os.environ["PINT_CLOCK_OVERRIDE"]
            else:
                os.environ["PINT_CLOCK_OVERRIDE"] = previous


@dataclass(frozen=True)
class PintPulsar:
    """One pulsar as PINT holds it, with the white noise of its noise file.

    Attributes:
        name: the par file's pulsar name.
        model: PINT's ``TimingModel``.
        toas: PINT's ``TOAs``.
        toaerrs: TOA errors in s with the noise file's EFAC and EQUAD folded in.
        noise: the noise file's per-backend values, as enterprise names them
            (``<PSR>_<backend>_efac``, ``_log10_t2equad``, ``_log10_tnequad``).
        has_ecorr: whether the noise file gives ECORR (which is not used).
    """

    name: str
    model: Any
    toas: Any
    toaerrs: np.ndarray
    noise: dict[str, float]
    has_ecorr: bool


def _read_one(files: _Files, runtime: Path, bipm: str, json_noise: dict[str, Any]) -> PintPulsar:
    """PINT's model and TOAs of one pulsar, with its white noise."""
    import pint.models
    import pint.toa
    from pint.solar_system_ephemerides import load_kernel

    try:
        model = pint.models.get_model(str(files.par), allow_T2=True)
    except Exception as error:  # PINT raises many kinds on a bad par file
        raise PartimError(f"{files.par}: PINT cannot read it ({error})") from error
    ephem = str(model.EPHEM.value or "DE421")
    load_kernel(ephem.lower(), path=str(_ephemeris(ephem, runtime, files.par)))
    try:
        toas = pint.toa.get_TOAs(
            str(files.tim), model=model, ephem=ephem.lower(), bipm_version=bipm, planets=False
        )
    except Exception as error:
        raise PartimError(
            f"{files.tim}: PINT cannot read it with {files.par.name} ({type(error).__name__}: "
            f"{error}); where this names a file or URL, that file is missing from the clock "
            f"directory {runtime}"
        ) from error
    if toas.ntoas < 2:
        raise PartimError(f"{files.tim}: {toas.ntoas} TOAs; expected >= 2")
    sigma = toas.get_errors().to_value("s")
    backends = np.array([str(v) for v in toas.get_flag_value("f", fill_value="")[0]])
    if files.noise is not None:
        noise = _noise_txt(files.noise)
        where = str(files.noise)
    else:
        noise = _noise_json(json_noise, files.name)
        where = f"{files.tim} (JSON noise dictionary)"
    errors = _scaled_errors(sigma, backends, noise, where)
    named = (
        {f"{files.name}_{b}_efac": v for b, v in noise.efac.items()}
        | {f"{files.name}_{b}_log10_t2equad": math.log10(v) for b, v in noise.t2equad.items()}
        | {f"{files.name}_{b}_log10_tnequad": math.log10(v) for b, v in noise.tnequad.items()}
    )
    return PintPulsar(files.name, model, toas, errors, named, noise.has_ecorr)


@contextmanager
def pint_timing(
    directory: str | Path,
    pulsars: int | Sequence[str] | None = None,
    clock_dir: str | Path | None = None,
) -> Iterator[list[PintPulsar]]:
    """The chosen pulsars of a par/tim folder as PINT objects, inside the offline setup
    (PINT computes lazily, so work with them inside the ``with`` block). Arguments and errors
    as :func:`read_partim`."""
    root = Path(directory)
    if not root.is_dir():
        raise PartimError(f"{root}: not a directory; expected a folder of .par/.tim files")
    chosen = _choose(_pair(root), pulsars, root)
    runtime = _runtime_dir(clock_dir)
    json_noise = _json_noise(root)
    with _offline(runtime) as bipm:
        yield [_read_one(f, runtime, bipm, json_noise) for f in chosen]


def to_pulsar(pulsar: PintPulsar, origin_mjd: float) -> Pulsar:
    """Our record of one pulsar: barycentric TOAs in s from ``origin_mjd``, the residuals of
    the timing model, the noise-scaled TOA errors, the design matrix with unit-norm columns
    and the unit vector to the pulsar (ICRS)."""
    from pint.residuals import Residuals

    model, toas = pulsar.model, pulsar.toas
    try:
        residuals = Residuals(toas, model).time_resids.to_value("s")
    except Exception as error:
        raise PartimError(
            f"pulsar {pulsar.name}: PINT cannot compute residuals ({type(error).__name__}: {error})"
        ) from error
    design, _, _ = model.designmatrix(toas)
    norms = np.linalg.norm(design, axis=0)
    design = design[:, norms > 0] / norms[norms > 0]
    position = np.asarray(model.ssb_to_psb_xyz_ICRS(), dtype=np.float64)
    mjd = np.asarray(model.get_barycentric_toas(toas).value, dtype=np.float64)
    order = np.argsort(mjd)
    return Pulsar(
        name=pulsar.name,
        toas=(mjd[order] - origin_mjd) * DAY,
        toaerrs=np.asarray(pulsar.toaerrs, dtype=np.float64)[order],
        residuals=np.asarray(residuals, dtype=np.float64)[order],
        position=position / np.linalg.norm(position),
        design_matrix=np.asarray(design, dtype=np.float64)[order],
    )


def read_partim(
    directory: str | Path,
    pulsars: int | Sequence[str] | None = None,
    clock_dir: str | Path | None = None,
) -> PartimArray:
    """Read a folder of ``.par``/``.tim`` files (and noise files) with PINT, offline.

    Args:
        directory: the folder.
        pulsars: all (None), the N best-timed (smallest ``TRES`` in the par file; a par
            file without ``TRES`` ranks last), or a list of names.
        clock_dir: PINT's clock-file directory; default ``$PINT_CLOCK_OVERRIDE``.

    Returns:
        The pulsars, their common span and origin, and notes on what was not used.

    Raises:
        PartimError: naming the file, for a missing/malformed file, a par file without a
            tim file or the reverse, no pulsar name, no TOAs, a backend without noise
            values, or missing clock or ephemeris files (never downloaded).
    """
    with pint_timing(directory, pulsars, clock_dir) as loaded:
        origin = math.floor(min(float(p.toas.get_mjds().value.min()) for p in loaded)) - 1
        array = [to_pulsar(p, origin) for p in loaded]
    first = min(float(p.toas.min()) for p in array)
    last = max(float(p.toas.max()) for p in array)
    return PartimArray(
        array, last - first, origin, ecorr_notes([p.name for p in loaded if p.has_ecorr])
    )


def ecorr_notes(names: list[str]) -> list[str]:
    """The note that the pulsars ``names`` have ECORR, which is not used (none if empty)."""
    if not names:
        return []
    return [f"ECORR (jitter) given for {', '.join(names)} is not used: the white noise is diagonal"]
