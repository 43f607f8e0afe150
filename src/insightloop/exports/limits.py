"""The bad-row limit: how many bad rows a file may have and still load (its good rows load,
its bad rows go to quarantine); past it the file is rejected whole."""

from __future__ import annotations

from dataclasses import dataclass

from insightloop.config import Config


@dataclass(frozen=True)
class BadRowLimit:
    max_rows: int
    max_fraction: float

    @classmethod
    def from_config(cls, config: Config) -> BadRowLimit:
        return cls(config.exports.max_bad_rows, config.exports.max_bad_fraction)

    def over_count(self, bad: int) -> bool:
        """Already past the limit, whatever the file's size (reading can stop)."""
        return bad > self.max_rows

    def exceeded(self, bad: int, total: int) -> str | None:
        """Why ``bad`` of ``total`` rows is too many (None: within the limit)."""
        if bad > self.max_rows:
            return f"{bad} bad rows, more than exports.max_bad_rows = {self.max_rows}"
        if total and bad / total > self.max_fraction:
            return (
                f"{bad} bad rows of {total} ({bad / total:.1%}), more than "
                f"exports.max_bad_fraction = {self.max_fraction:g}"
            )
        return None
