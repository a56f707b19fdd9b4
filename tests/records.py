"""Small helpers to build CBR records and pages in tests."""

from __future__ import annotations

import json
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
