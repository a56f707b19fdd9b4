"""The official SDK (huaweicloudsdkcbr) against `cbrq serve`, compared with the Python API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from huaweicloudsdkcbr.v1 import (
    CbrClient,
    ListBackupsRequest,
    ShowBackupRequest,
)
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

from engine.inventory import Inventory
from tests.golden.cases import load_store
from tests.server_fixture import get, running

P1 = "3cbb7daa64c184fa48a7c8252abc5619"
P3 = "eca9bad1449e78e4f15ce760f3e452f2"


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return Inventory.open(load_store())


@pytest.fixture(scope="module")
def endpoint(inventory: Inventory) -> Iterator[str]:
    with running(inventory) as url:
        yield url


def client(endpoint: str, project: str = P1) -> Any:
    credentials = BasicCredentials("any-ak", "any-sk", project)
    return CbrClient.new_builder().with_credentials(credentials).with_endpoint(endpoint).build()


def ids(response: Any) -> list[str]:
    return [b.id for b in response.backups]


def expected(inventory: Inventory, project: str = P1, **params: Any) -> list[str]:
    return inventory.query(project=project, **params).ids


def test_repeated_status_sort_and_time_range(endpoint: str, inventory: Inventory) -> None:
    request = ListBackupsRequest(
        status=["available", "error"],
        sort="created_at:asc,name:desc",
        limit=50,
        start_time="2025-06-01T00:00:00Z",
        end_time="2026-06-30T00:00:00Z",
    )
    response = client(endpoint).list_backups(request)
    want = inventory.query(
        status=["available", "error"],
        sort="created_at:asc,name:desc",
        limit=50,
        start_time="2025-06-01T00:00:00Z",
        end_time="2026-06-30T00:00:00Z",
        project=P1,
    )
    assert response.count == want.count > 0
    assert ids(response) == want.ids
    assert response.backups[0].created_at is not None  # the SDK parsed our timestamps


def test_used_percent_and_own_type_shared(endpoint: str, inventory: Inventory) -> None:
    response = client(endpoint).list_backups(ListBackupsRequest(used_percent="80"))
    assert ids(response) == expected(inventory, used_percent=80, limit=1000)
    shared = client(endpoint, P3).list_backups(ListBackupsRequest(own_type="shared"))
    assert ids(shared) == expected(inventory, P3, own_type="shared", limit=1000)
    assert shared.count > 0


def test_marker_paging_until_exhaustion(endpoint: str, inventory: Inventory) -> None:
    sdk = client(endpoint)
    pages: list[str] = []
    marker = None
    for _ in range(100):
        response = sdk.list_backups(ListBackupsRequest(limit=7, marker=marker, sort="name:asc"))
        if not response.backups:
            break
        pages.extend(ids(response))
        marker = response.backups[-1].id
    assert pages == expected(inventory, sort="name:asc")
    assert len(pages) == len(set(pages)) == 110


def test_bad_sort_is_a_client_error(endpoint: str) -> None:
    with pytest.raises(ClientRequestException) as caught:
        client(endpoint).list_backups(ListBackupsRequest(sort="size:desc"))
    assert caught.value.status_code == 400
    assert caught.value.error_code == "BackupService.9900"
    assert "sort" in caught.value.error_msg


def test_show_backup_known_and_unknown(endpoint: str, inventory: Inventory) -> None:
    known = expected(inventory, limit=1)[0]
    assert client(endpoint).show_backup(ShowBackupRequest(backup_id=known)).backup.id == known
    with pytest.raises(ClientRequestException) as caught:
        client(endpoint).show_backup(ShowBackupRequest(backup_id="no-such-backup"))
    assert caught.value.status_code == 404
    assert caught.value.error_code == "BackupService.6200"


def test_plain_http_routes_errors_and_headers(endpoint: str) -> None:
    status, headers, body = get(f"{endpoint}/v3/{P1}/backups?limit=2")
    assert status == 200 and headers["content-type"] == "application/json"
    assert len(headers["x-request-id"]) == 32
    assert set(body) == {"count", "backups", "offset", "limit"} and body["limit"] == 2
    status, _, body = get(f"{endpoint}/v3/{P1}/backups")
    assert status == 200 and body["limit"] == 1000 and len(body["backups"]) == body["count"]
    status, _, body = get(f"{endpoint}/v3/{P1}/vaults")
    assert status == 200 and body["count"] == 3
    vault = body["vaults"][0]["id"]
    assert get(f"{endpoint}/v3/{P1}/vaults/{vault}")[2]["vault"]["id"] == vault
    status, _, body = get(f"{endpoint}/v3/{P1}/vaults/none")
    assert (status, body["error_code"]) == (404, "BackupService.6105")
    status, headers, body = get(f"{endpoint}/elsewhere")
    assert status == 404 and "error_code" in body and "x-request-id" in headers
    status, _, body = get(f"{endpoint}/v3/{P1}/backups?limit=" + "9" * 9000)
    assert status == 414
    status, _, body = get(f"{endpoint}/v3/{P1}/backups?stauts=x&limit=0")
    assert status == 400 and "stauts" in body["error_msg"] and "limit" in body["error_msg"]


def test_token_is_required_when_configured(inventory: Inventory) -> None:
    with running(inventory, token="s3cret") as url:
        assert get(f"{url}/v3/{P1}/backups?limit=1")[0] == 401
        status, _, body = get(f"{url}/v3/{P1}/backups?limit=1", {"X-Auth-Token": "s3cret"})
        assert status == 200 and body["limit"] == 1
