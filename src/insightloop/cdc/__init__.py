"""Change data capture from the application's PostgreSQL (logical replication, ``pgoutput``).

The reader (its own process) turns the slot's stream, and first a consistent snapshot, into
Debezium-shaped change envelopes (``changes``) and appends them, one log record per
transaction or chunk of one, to the CDC log; it confirms the slot's flush LSN only after
that append is durable. The processor then loads them into ``raw.cdc_changes`` and on into
``cleaned.app_<table>`` (current state) and ``cleaned.app_<table>_changes`` (history).
"""
