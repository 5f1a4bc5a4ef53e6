"""What every load reports: rows read = loaded + quarantined + duplicates, per file and in total.

Loads (gateway logs, billing exports, evals) keep one record per file with these four counts;
``FileTotals`` adds the totals to any result that holds such records in ``files``.
"""

from __future__ import annotations


class FileTotals:
    """Mixin for a load result with ``files``: records carrying the four row counts."""

    files: list

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    @property
    def rows_duplicate(self) -> int:
        return sum(f.rows_duplicate for f in self.files)

    @property
    def balanced(self) -> bool:
        """Nothing lost: every file's rows read equal loaded + quarantined + duplicates."""
        return all(
            f.rows_read == f.rows_loaded + f.rows_quarantined + f.rows_duplicate
            for f in self.files
        )
