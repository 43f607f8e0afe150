"""What ``insightloop status`` shows of CDC: the reader's state file and, when the source
answers quickly, its slot (lag, retained WAL). Never raises: a part it cannot read is
reported as an error string."""

from __future__ import annotations

from typing import Any

from insightloop.cdc.source import connect_sql, slot_info
from insightloop.cdc.state import format_lsn, load_state, state_path
from insightloop.config import Config


def cdc_status(config: Config, *, timeout: int = 3) -> dict[str, Any]:
    """``{"enabled", "slot", "publication", "state": {...} | None, "server": {...} | None,
    "error": str | None}``; LSNs as ``X/Y`` text, lag and retained WAL in bytes."""
    settings = config.cdc
    report: dict[str, Any] = {
        "enabled": settings.enabled,
        "slot": settings.slot,
        "publication": settings.publication,
        "state": None,
        "server": None,
        "error": None,
    }
    try:
        st = load_state(state_path(config))
    except Exception as exc:  # a damaged state file must not break status
        report["error"] = f"state file: {exc}"
        st = None
    if st is not None:
        snap = st.snapshot
        report["state"] = {
            "database": st.database,
            "slot_lsn": format_lsn(st.slot_lsn),
            "confirmed_lsn": format_lsn(st.confirmed_lsn),
            "snapshot": {
                "complete": snap.complete,
                "tables_done": len(snap.tables_done),
                "tables_total": snap.tables_total,
                "rows": snap.rows,
            },
            "resnapshots": st.resnapshots,
            "updated_at": st.updated_at,
        }
    dsn = settings.dsn or _embedded_dsn(config)
    if dsn is None:
        report["error"] = report["error"] or "the demo application database is not running"
        return report
    try:
        with connect_sql(dsn, timeout=timeout) as conn:
            slot = slot_info(conn, settings.slot)
    except Exception as exc:
        report["error"] = (
            f"source database: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}"
        )
        return report
    if slot is not None:
        warn = settings.wal_warn_bytes
        report["server"] = {
            "current_lsn": format_lsn(slot.current_lsn),
            "slot_confirmed_lsn": format_lsn(slot.confirmed_lsn) if slot.confirmed_lsn is not None else None,
            "lag_bytes": slot.lag_bytes,
            "retained_wal_bytes": slot.retained_bytes,
            "wal_status": slot.wal_status,
            "active": slot.active_pid is not None,
            "wal_retention_warning": bool(warn and (slot.retained_bytes or 0) > warn),
        }
    else:
        report["server"] = {"slot_missing": True}
    return report


def _embedded_dsn(config: Config) -> str | None:
    from insightloop.cdc.appdb.server import appdb_dir, dsn_for, running_port

    port = running_port(appdb_dir(config))
    return None if port is None else dsn_for(port)
