"""Every code a person types is read the same way, and every integer strictly.

* `normalize_code`: NFKC, so digits typed with a Chinese input method (`１４０１`) are the
  ASCII digits they look like, and white space is dropped. It is used for the roster's
  member numbers and village codes, an enrollment code, a terminal's village code, a
  session's villages and a member number in a path.
* `strict_int`: ASCII digits 0-9 only (not `²`, not `１２`, not `_`, not a sign) and in range.
"""

from __future__ import annotations

import pytest

from shared.typed import NumberError, is_scientific, normalize_code, strict_int
from tests.conftest import Server

pytestmark = pytest.mark.asyncio
FULL = str.maketrans("0123456789-", "０１２３４５６７８９－")


async def test_normalize_and_strict_int() -> None:
    assert normalize_code(" １４０１２１ １０００\u200b０１ ") == "140121100001"
    assert is_scientific("1.40121E+17") and is_scientific("１.４E+１７") and not is_scientific("19401")
    assert strict_int("8750", "port", 0, 65535) == 8750
    for bad in ("²", "１２", "1_000", "+1", "-1", " 1", "", "1" * 20, "70000"):
        with pytest.raises(NumberError):
            strict_int(bad, "port", 0, 65535)


async def test_full_width_enrollment_code(server: Server) -> None:
    async with server.http.post("/api/v1/admin/terminals/T140121100001/enrollment", json={}) as r:
        code = (await r.json())["code"]
    typed = code.translate(FULL).replace("－", " － ")
    async with server.http.post("/api/v1/enroll", json={"code": typed, "software_version": "t"}) as r:
        assert r.status == 201, await r.text()
        assert (await r.json())["terminal_id"] == "T140121100001"


async def test_full_width_village_codes(server: Server) -> None:
    async with server.http.post("/api/v1/admin/terminals", json={
            "village_code": "１４０１２１１０００ ０２", "id": "T140121100002X"}) as r:
        assert r.status == 201, await r.text()
    async with server.http.post("/api/v1/admin/sessions", json={
            "title": "t", "starts_at": "2030-01-01T10:00:00Z", "content_ids": ["missing"],
            "village_codes": ["１４０１２１１０００ ０１"]}) as r:
        err = (await r.json())["error"]
    assert err["code"] == "unknown_content"  # the village code passed, the content did not


async def test_member_number_in_path(server: Server) -> None:
    body = ("序号,姓名,所在村（社区）代码\n19801,路径,140121100001\n").encode()
    async with server.http.post("/api/v1/admin/members/import", data=body) as r:
        assert (await r.json())["added"] == 1
    async with server.http.get("/api/v1/admin/reports/members/１９８０１") as r:
        assert r.status == 200, await r.text()
