"""The lake: Apache Iceberg tables (pyiceberg) in namespaces ``raw``, ``cleaned``, ``quarantine``."""
