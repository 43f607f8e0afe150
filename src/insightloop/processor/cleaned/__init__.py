"""Stage 2 for SDK events: raw → cleaned Segment warehouse tables (and quarantine).

``CleanedStage(catalog, config)`` is the ``processor.stage.DerivedStage`` the runner drives.
Modules, each one idea: ``tables`` (fixed table shapes), ``naming`` (snake_case names),
``coltypes`` (the type policy), ``arrowjson`` (Arrow's JSON reader, kept faithful),
``objects`` (JSON objects → typed leaf columns), ``reconcile`` (leaves → a table's
columns), ``common`` (columns shared by every event table), ``rows`` (events → per-table
Arrow), ``users`` (latest traits per user), ``quarantine``, ``dedup`` (seen ids and the
watermark), ``commits`` (Iceberg writes), ``contracts`` (the contract check: verdicts, MODEL
tables, ``warn`` flags), ``hints`` (column types from a contract), ``stage`` (the apply loop
and its exactly-once argument, and quarantine replays).
"""

from insightloop.processor.cleaned.stage import CleanedStage

__all__ = ["CleanedStage"]
