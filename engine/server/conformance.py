"""Replaying generated ListBackups queries against any HTTP endpoint and comparing answers.

The endpoint is expected to serve the same data as the local inventory. Each
generated query (valid ones over all 23 parameters and invalid ones of every
kind) is sent to ``GET {endpoint}/v3/{project}/backups`` and answered locally
with the server's defaults (``limit`` 1000); the two are compared on status
code, count, ids in order, offset and limit, or the error code. A
disagreement is shrunk by hypothesis to a minimal query before it is reported.

Example::

    report = check_endpoint("http://127.0.0.1:8080", "p1", Inventory.open(), examples=200)
    print(report.agreed, report.disagreement)
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from engine.errors import QueryError
from engine.inventory import Inventory
from engine.params import QueryParams

Answer = dict[str, Any]


@dataclass(frozen=True)
class Disagreement:
    """A minimal query the endpoint answers differently, with both answers.

    Example: ``print(d.query, d.expected, d.actual)``.
    """

    query: str
    expected: Answer
    actual: Answer


@dataclass
class Report:
    """What a conformance run found: queries that agreed, the first disagreement.

    Example: ``check_endpoint(...).disagreement is None``.
    """

    agreed: int = 0
    disagreement: Disagreement | None = None


def local_answer(inventory: Inventory, project: str, query: str) -> Answer:
    """What a conforming server answers, summarized for comparison.

    Example: ``local_answer(inv, "p1", "status=error")["count"]``.
    """
    params = QueryParams.parse(query).with_api_defaults()
    try:
        result = inventory.query(params, project=project)
    except QueryError as err:
        return {"status": err.http_status, "error_code": err.error_code}
    return {
        "status": 200,
        "count": result.count,
        "ids": result.ids,
        "offset": result.offset,
        "limit": result.limit,
    }


def remote_answer(endpoint: str, project: str, query: str, timeout: float = 30) -> Answer:
    """The endpoint's answer, summarized the same way (transport failures included).

    Example: ``remote_answer("http://127.0.0.1:8080", "p1", "limit=1")``.
    """
    url = f"{endpoint.rstrip('/')}/v3/{project}/backups" + (f"?{query}" if query else "")
    request = urllib.request.Request(url, headers={"X-Auth-Token": "cbrq-conformance"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    except OSError as err:
        return {"status": None, "transport_error": str(err)}
    try:
        body = json.loads(raw)
    except ValueError:
        return {"status": status, "body": raw[:200].decode(errors="replace")}
    if status != 200 or not isinstance(body, dict) or "backups" not in body:
        return {
            "status": status,
            "error_code": body.get("error_code") if isinstance(body, dict) else None,
        }
    ids = [b.get("id") for b in body["backups"] if isinstance(b, dict)]
    return {
        "status": status,
        "count": body.get("count"),
        "ids": ids,
        "offset": body.get("offset"),
        "limit": body.get("limit"),
    }


def check_endpoint(
    endpoint: str,
    project: str,
    inventory: Inventory,
    *,
    examples: int = 200,
    seed: int | None = None,
) -> Report:
    """Replay generated queries against ``endpoint``; shrink and return the first disagreement.

    Example: ``check_endpoint("http://127.0.0.1:8080", "p1", Inventory.open("inv"))``.
    """
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as fix_seed
    from hypothesis import strategies as st

    from engine.testing.strategies import bad_query_strings, query_strings

    ids = inventory.lazy().select("id").head(50).collect()["id"].to_list()
    report = Report()
    failures: list[Disagreement] = []

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(st.one_of(query_strings(ids=ids), bad_query_strings()))
    def probe(query: str) -> None:
        expected = local_answer(inventory, project, query)
        actual = remote_answer(endpoint, project, query)
        if expected != actual:
            failures.append(Disagreement(query, expected, actual))
            raise AssertionError(query)
        report.agreed += 1

    if seed is not None:
        probe = fix_seed(seed)(probe)
    try:
        probe()
    except AssertionError:
        report.disagreement = failures[-1]  # hypothesis replays the minimal example last
    return report
