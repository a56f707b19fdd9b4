"""Small helpers to build CBR records and pages in tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def backup(id: str, **fields: Any) -> dict[str, Any]:
    """A plausible backup record with ``fields`` overriding the defaults."""
    record: dict[str, Any] = {
        "id": id,
        "name": f"autobk_{id}",
        "status": "available",
        "created_at": "2020-02-21T07:00:54.065135",
        "updated_at": "2020-02-21T07:07:25.113761",
        "expired_at": "2020-05-21T07:00:54.060493",
        "project_id": "p1",
        "vault_id": "v1",
        "resource_id": "r1",
        "resource_name": "disk-1",
        "resource_size": 40,
        "resource_type": "OS::Cinder::Volume",
        "image_type": "backup",
        "description": "",
        "children": [],
        "replication_records": [],
        "extend_info": {"auto_trigger": True, "bootable": False},
    }
    record.update(fields)
    return record


def page(*records: dict[str, Any], count: int | None = None) -> str:
    """A ListBackups response, pretty-printed as operators save them."""
    body = {"count": len(records) if count is None else count, "backups": list(records)}
    return json.dumps(body, indent=2)


def write_page(path: Path, *records: dict[str, Any], count: int | None = None) -> str:
    """Write a compact ListBackups page of ``records`` to ``path``; the path as text."""
    total = len(records) if count is None else count
    path.write_text(json.dumps({"count": total, "backups": list(records)}))
    return str(path)


def cbrq(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``cbrq ARGS...`` as a user would, in a process of its own; its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, timeout=120
    )
