"""Batch exports: daily files from SaaS tools (CRM contacts, companies, deals …) from a landing
zone into ``raw.export_rows``, ``quarantine.export_rows`` and ``cleaned.crm_<entity>``.

One writer per lake (the file loader, ``lake.ownership.FILE_LOADER``: ``insightloop loader``,
or ``insightloop load`` by hand, under one lock). Guarantees:

- **whole or nothing**: all of a file's rows are one raw commit (``raw_load``); a crash, an
  unreadable file (a truncated gzip) or a file over the bad-row limit commits nothing, and
  the data files it wrote are deleted (at once, or from its journal at the next start:
  ``staging``);
- **never twice**: a file's content hash keys the manifest (``manifest``), whose truth is
  raw's own commits; the same bytes again are a no-op;
- **corrections replace**: a later file of the same source, entity, period and part replaces
  the rows the earlier one gave the cleaned table, in one commit (``cleaned``);
- **exactly once into cleaned and quarantine**: the Staged shape: each table records the raw
  sequence it holds (``apply``); a crash between tables is finished on restart. Stage 2
  merges the typed rows stage 1 staged (``staging``), or derives them from raw when they
  are gone;
- **bounded memory**: DuckDB streams each file as Arrow batches (``reader``); no Python loop
  over rows.

Modules: ``landing`` (where files are), ``contract`` (what they hold), ``fingerprint``,
``header``, ``reader`` (reading), ``limits``, ``raw_load`` (stage 1: ``raw_columns``,
``raw_files``, ``background``, ``staging``), ``manifest``, ``apply``, ``quarantine``,
``cleaned`` (stage 2), ``loader`` (a file's two stages; ``write_errors``: what makes a file
``failed`` rather than ``rejected``), ``status`` (per-file status), ``service`` (the
polling process), ``metrics``, ``generate`` and ``infer`` (demo files, proposed contracts).

Known costs: the cleaned table is rewritten whole at each merge (an unpartitioned table:
pyiceberg 0.12 streams writes into unpartitioned tables only, and writes no merge-on-read
deletes), so its size bounds the cost of every merge. Files loaded together are therefore
merged at once (``apply.runs``: the parts of a day cost one rewrite); a correction is merged
alone and also re-reads raw of the entity's other current files.
"""
