"""Each lake table has one writer, the only process that compacts and expires it."""

from __future__ import annotations

from insightloop.lake.ownership import CDC_PROCESSOR, CLEANER, FILE_LOADER, PROCESSOR, writer, written_by
from insightloop.lake.raw_table import SDK_EVENTS
from insightloop.processor.cdc.naming import CLEANED, PREFIX
from insightloop.processor.cdc.quarantine import CDC_QUARANTINE
from insightloop.processor.cdc.raw_rows import CDC_CHANGES


def test_every_table_has_the_writer_that_commits_to_it() -> None:
    assert writer(SDK_EVENTS) == PROCESSOR
    assert writer(("cleaned", "tracks")) == CLEANER
    assert writer("cleaned.order_completed") == CLEANER
    assert writer("quarantine.sdk_events") == CLEANER
    # The names the CDC processor really uses (not copies of them).
    assert writer(CDC_CHANGES) == CDC_PROCESSOR
    assert writer(CDC_QUARANTINE) == CDC_PROCESSOR
    assert writer(f"{CLEANED}.{PREFIX}accounts") == CDC_PROCESSOR
    assert writer(f"{CLEANED}.{PREFIX}accounts_changes") == CDC_PROCESSOR


def test_the_sdk_processes_leave_the_cdc_tables_alone() -> None:
    cleaner, processor = written_by(CLEANER), written_by(PROCESSOR)
    assert not cleaner(("cleaned", "app_accounts")) and not processor(("raw", "cdc_changes"))
    assert cleaner(("cleaned", "event__app_opened"))


def test_the_export_tables_are_the_file_loaders() -> None:
    loader = written_by(FILE_LOADER)
    assert loader("raw.export_rows") and loader("quarantine.export_rows") and loader("cleaned.crm_contacts")
    assert not written_by(CLEANER)("cleaned.crm_contacts")
