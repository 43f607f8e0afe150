"""Change data capture on the lake side: the CDC log → ``raw.cdc_changes`` (stage 1, the
shared ``runner.Processor`` loop with ``raw_rows.CdcRawRows``) → per source table a
current-state table ``cleaned.app_<table>`` and an append-only history
``cleaned.app_<table>_changes`` (stage 2, ``stage.CdcStage``), exactly once.

The wire contract is ``insightloop.cdc.changes`` (owned by the CDC reader); nothing here
imports the reader.
"""
