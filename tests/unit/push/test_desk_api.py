"""The desk's reading of audit histories: an RTIC analyst may read an alert's audit
(the alert detail's history), and no other object's."""

from __future__ import annotations

import pytest

from push.audit import act_record
from rtic.casework import AuditAction, AuditObject
from rtic.schemas import Role
from rtic.tokens import Principal
from tests.conftest import NOW
from tests.unit.push.test_api import MINE, Api, api, call  # noqa: F401 (the fixture)


def test_an_analyst_reads_an_alerts_audit_and_the_reading_is_audited(api: Api) -> None:  # noqa: F811
    who = Principal("sup-9", Role.SUPERVISOR)
    opened = act_record(who, AuditAction.ALERT_OPENED, AuditObject.ALERT, "a7", NOW)
    api.http.portal.call(api.records.audit.append, [opened])
    answer = call(api, "rtic_analyst", "GET", "/api/audit?object_type=alert&object_id=a7")
    assert answer.status_code == 200
    assert [(r["actor"], r["action"]) for r in answer.json()["records"]] == [
        ("sup-9", "alert_opened")
    ]
    (viewed,) = api.audit.records
    assert (viewed.actor, viewed.action, viewed.object_id) == (
        "an-1",
        AuditAction.AUDIT_VIEWED,
        "alert:a7",
    )


@pytest.mark.parametrize(
    "object_type, object_id",
    [
        ("case", MINE),
        ("plate", "AB12CDE"),
        ("person", "P-100"),
        ("address", "1 High Street"),
        ("audit", "alert:a7"),
        ("evidence", "EV-1"),
        ("token", "jti-1"),
    ],
)
def test_an_analyst_reads_no_other_objects_audit(
    api: Api,  # noqa: F811
    object_type: str,
    object_id: str,
) -> None:
    answer = call(
        api, "rtic_analyst", "GET", f"/api/audit?object_type={object_type}&object_id={object_id}"
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    assert api.audit.records == []  # a refusal reads nothing and records nothing
    supervisor = call(
        api, "supervisor", "GET", f"/api/audit?object_type={object_type}&object_id={object_id}"
    )
    assert supervisor.status_code in (200, 404)  # the supervisor's rule is unchanged
