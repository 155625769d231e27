"""Reading NetFlow v2 / v3 CSV files, streamed in chunks and validated.

The files of the NF-v2 family (Sarhan, Layeghy and Portmann 2021, arXiv:2101.11315) have
millions of rows, so they are read in record batches with pyarrow's streaming CSV reader,
and every batch is checked before it is kept: a missing or unknown column, a value that is no
number, NaN or infinity, or a negative counter stops the read with a
:class:`~flow_core.errors.ConfigError` naming the file, the columns and the first offending
lines. Columns are selected by name, never by position, so NF-v2 and NF-v3 files (which add
ten temporal fields) read alike; the schema found is returned with the records.

Class names are canonicalised: ``benign`` in any casing becomes ``Benign``, the
``Infilteration`` misspelling of NF-CSE-CIC-IDS2018 becomes ``Infiltration``, and other names
that differ only in casing are merged into the first spelling seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from flow_core.errors import ConfigError
from flow_nids.data.schema import ADDRESS_FEATURES, BENIGN, V2_FEATURES, V3_EXTRA_FEATURES

__all__ = ["NetflowTable", "canonical_attack", "read_netflow", "validate_frame"]

_TARGETS = ("Label", "Attack")
_SHOWN = 5  # offending lines named in an error
_FIXES = {"infilteration": "Infiltration", "benign": BENIGN}


@dataclass(frozen=True)
class NetflowTable:
    """Validated flow records in file order.

    Attributes:
        frame: the features (float64, addresses as strings), ``Label`` (int8) and ``Attack``.
        schema: ``"NF-v2"`` or ``"NF-v3"``, from the header.
        source: where the records came from (a path or a description).
    """

    frame: pd.DataFrame
    schema: str
    source: str

    @property
    def labels(self) -> np.ndarray:
        """``Label`` as a 0/1 integer array."""
        labels: np.ndarray = self.frame["Label"].to_numpy(dtype=np.int64)
        return labels

    @property
    def attacks(self) -> np.ndarray:
        """``Attack`` class names as an object array."""
        names: np.ndarray = self.frame["Attack"].to_numpy(dtype=object)
        return names


def canonical_attack(names: pd.Series, seen: dict[str, str] | None = None) -> pd.Series:
    """Canonical class names (see the module docstring); ``seen`` carries the spellings
    chosen so far across chunks."""
    spellings = {} if seen is None else seen
    cleaned = names.astype(str).str.strip()
    mapping = {}
    for name in cleaned.unique():
        key = name.lower()
        if key not in spellings:
            spellings[key] = _FIXES.get(key, name)
        mapping[name] = spellings[key]
    return cleaned.map(mapping)


def _schema(columns: list[str], source: str) -> str:
    """``"NF-v2"`` or ``"NF-v3"``; a missing or unknown column is a ConfigError."""
    required = (*V2_FEATURES, *_TARGETS)
    missing = [c for c in required if c not in columns]
    accepted = "the 43 NF-v2 features, Label and Attack (NF-v3: plus its 10 temporal fields)"
    if missing:
        raise ConfigError(f"{source}: missing column(s) {', '.join(missing)}; expected {accepted}")
    extra = [c for c in columns if c not in required]
    unknown = [c for c in extra if c not in V3_EXTRA_FEATURES]
    if unknown:
        raise ConfigError(
            f"{source}: unexpected column(s) {', '.join(unknown)}; accepted: {accepted}"
        )
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise ConfigError(f"{source}: duplicated column(s) {', '.join(duplicated)}")
    if not extra:
        return "NF-v2"
    absent = [c for c in V3_EXTRA_FEATURES if c not in extra]
    if absent:
        raise ConfigError(
            f"{source}: NF-v3 temporal field(s) {', '.join(extra)} present but"
            f" {', '.join(absent)} missing; expected {accepted}"
        )
    return "NF-v3"


def _lines(rows: np.ndarray, first_line: int) -> str:
    """``lines 12, 40`` for row positions of a chunk starting at file line ``first_line``."""
    shown = ", ".join(str(first_line + int(r)) for r in rows[:_SHOWN])
    more = f" (+{len(rows) - _SHOWN} more)" if len(rows) > _SHOWN else ""
    return f"line{'s' if len(rows) > 1 else ''} {shown}{more}"


def validate_frame(frame: pd.DataFrame, source: str, first_line: int = 2) -> pd.DataFrame:
    """Check and convert one chunk of records; ``first_line`` is its first row's line in the
    file (the header is line 1). Returns numeric columns as float64 and ``Label`` as int8.

    Raises:
        ConfigError: naming the problem, the columns and the first offending lines.
    """
    frame = frame.reset_index(drop=True)
    numeric = [c for c in frame.columns if c not in (*ADDRESS_FEATURES, "Attack")]
    converted = {}
    for column in numeric:
        values = frame[column]
        number = pd.to_numeric(values, errors="coerce")
        bad = np.flatnonzero(number.isna().to_numpy() & values.notna().to_numpy())
        if len(bad):
            example = values.iloc[int(bad[0])]
            raise ConfigError(
                f"{source}: column {column} must hold numbers, found {example!r} at"
                f" {_lines(bad, first_line)}"
            )
        converted[column] = number.astype(np.float64)
    numbers = pd.DataFrame(converted)
    array = numbers.to_numpy()
    for problem, mask in (("NaN (empty)", np.isnan(array)), ("infinite", np.isinf(array))):
        if mask.any():
            columns = [numeric[c] for c in np.flatnonzero(mask.any(axis=0))]
            rows = np.flatnonzero(mask.any(axis=1))
            raise ConfigError(
                f"{source}: {problem} values in column(s) {', '.join(columns)} at"
                f" {_lines(rows, first_line)}; every feature must be a finite number"
            )
    negative = array < 0
    if negative.any():
        columns = [numeric[c] for c in np.flatnonzero(negative.any(axis=0))]
        rows = np.flatnonzero(negative.any(axis=1))
        raise ConfigError(
            f"{source}: negative counter(s) in column(s) {', '.join(columns)} at"
            f" {_lines(rows, first_line)}; NetFlow counters are >= 0"
        )
    labels = numbers["Label"].to_numpy()
    bad = np.flatnonzero((labels != 0) & (labels != 1))
    if len(bad):
        raise ConfigError(
            f"{source}: column Label must be 0 (benign) or 1 (attack), found {labels[bad[0]]:g}"
            f" at {_lines(bad, first_line)}"
        )
    for column in (*ADDRESS_FEATURES, "Attack"):
        if column in frame.columns:
            empty = np.flatnonzero(frame[column].isna().to_numpy())
            if len(empty):
                raise ConfigError(
                    f"{source}: empty {column} at {_lines(empty, first_line)}; expected text"
                )
    out = frame.copy()
    for column in numeric:
        out[column] = numbers[column]
    out["Label"] = numbers["Label"].astype(np.int8)
    return out


def read_netflow(
    path: str | Path,
    *,
    chunk_rows: int = 1 << 18,
    columns: tuple[str, ...] | None = None,
    engine: str = "pyarrow",
) -> NetflowTable:
    """Read and validate an NF-v2 or NF-v3 CSV file (optionally gzip-compressed) in chunks
    of about ``chunk_rows`` rows, keeping ``columns`` (default: all) plus Label and Attack.

    With ``engine="pyarrow"`` pyarrow's streaming reader parses the numbers, and a value it
    cannot parse sends the file through the ``"pandas"`` engine, which reads text chunks and
    finds and names the offending cell.

    Raises:
        ConfigError: the file is missing, or its header or values break the schema.
    """
    source = str(path)
    if not Path(path).is_file():
        raise ConfigError(f"data file {source} does not exist; give an NF-v2 or NF-v3 CSV file")
    try:
        header = list(pd.read_csv(path, nrows=0).columns)
    except (ValueError, OSError) as error:
        raise ConfigError(f"{source}: not a readable CSV file ({error})") from None
    schema = _schema(header, source)
    keep = [*(header if columns is None else columns)]
    keep = [c for c in keep if c not in _TARGETS] + list(_TARGETS)
    if engine not in ("pyarrow", "pandas"):
        raise ConfigError(f"engine must be 'pyarrow' or 'pandas', got {engine!r}")
    try:
        if engine == "pandas":
            raise pa.ArrowInvalid("text path requested")
        parts = list(_arrow_chunks(path, keep, chunk_rows, source))
    except pa.ArrowInvalid:
        parts = list(_pandas_chunks(path, keep, chunk_rows, source))
    if not parts:
        raise ConfigError(f"{source}: the file has a header but no records")
    frame = pd.concat(parts, ignore_index=True)
    frame["Attack"] = canonical_attack(frame["Attack"])
    return NetflowTable(frame, schema, source)


def _arrow_chunks(
    path: str | Path, keep: list[str], chunk_rows: int, source: str
) -> Iterator[pd.DataFrame]:
    """Record batches parsed by pyarrow with numeric types, validated one by one."""
    text = {*ADDRESS_FEATURES, "Attack"}
    types = {c: (pa.string() if c in text else pa.float64()) for c in keep}
    convert = pacsv.ConvertOptions(
        column_types=types, include_columns=keep, strings_can_be_null=True
    )
    read = pacsv.ReadOptions(block_size=max(1 << 16, chunk_rows * 200))
    line = 2
    with pa.input_stream(str(path), compression="detect") as stream:
        reader = pacsv.open_csv(stream, read_options=read, convert_options=convert)
        for batch in reader:
            frame = batch.to_pandas()
            yield validate_frame(frame, source, first_line=line)
            line += len(frame)


def _pandas_chunks(
    path: str | Path, keep: list[str], chunk_rows: int, source: str
) -> Iterator[pd.DataFrame]:
    """Chunks read as text by pandas, validated one by one (the path that names bad cells)."""
    reader = pd.read_csv(
        path,
        chunksize=chunk_rows,
        dtype=str,
        keep_default_na=False,
        na_values=[""],
        usecols=keep,
    )
    line = 2
    for chunk in reader:
        yield validate_frame(chunk[keep], source, first_line=line)
        line += len(chunk)
