"""``report.md``: the human summary of a run, with its tables and figures."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Report", "markdown_table"]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A GitHub-flavoured markdown table; columns are the union of the rows' keys, in order."""
    if not rows:
        return "_(no rows)_\n"
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


class Report:
    """Collects sections in order and writes them to ``<run>/report.md``.

    Figures live in ``<run>/figures/`` and are linked relatively, so the run directory can be
    moved or archived as a whole.
    """

    def __init__(self, out_dir: Path, title: str) -> None:
        self.out_dir = out_dir
        self.title = title
        self._sections: list[str] = []
        self._figures: list[Path] = []

    def add_text(self, markdown: str) -> None:
        """Append a paragraph of markdown."""
        self._sections.append(markdown.strip() + "\n")

    def add_table(self, title: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append a titled table."""
        self._sections.append(f"### {title}\n\n" + markdown_table(rows))

    def add_figure(self, filename: str, caption: str) -> Path:
        """Reserve ``figures/<filename>`` for a figure, link it, and return the path to save to."""
        if Path(filename).name != filename or not filename.endswith(".png"):
            raise ValueError(f"figure filename must be a bare '*.png' name, got {filename!r}")
        path = self.out_dir / "figures" / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        self._figures.append(path)
        self._sections.append(f"![{caption}](figures/{filename})\n\n_{caption}_\n")
        return path

    @property
    def figures(self) -> list[Path]:
        """The paths reserved by :meth:`add_figure`, in order (some may not be saved yet)."""
        return list(self._figures)

    def render(self, metrics: Mapping[str, float], header: Mapping[str, Any]) -> str:
        """The whole report as markdown: header facts, final metrics, then the sections."""
        parts = [f"# {self.title}\n"]
        parts.append("\n".join(f"- **{k}**: {_cell(v)}" for k, v in header.items()) + "\n")
        rows = [{"metric": k, "value": v} for k, v in metrics.items()]
        parts.append("## Final metrics\n\n" + markdown_table(rows))
        if self._sections:
            parts.append("## Details\n")
            parts.extend(self._sections)
        return "\n".join(parts)

    def write(self, metrics: Mapping[str, float], header: Mapping[str, Any]) -> Path:
        path = self.out_dir / "report.md"
        path.write_text(self.render(metrics, header), encoding="utf-8")
        return path
