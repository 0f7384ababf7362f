"""The library and uploads, as a county admin does them in Chromium.

Upload: several files at once through tus-js-client, with bytes, speed and time left; a
refusal (not a video) shown in Chinese with the server's English after it; a dropped link
is announced and the upload goes on by itself once the link is back; pause, then a
reload, and the same file chosen again resumes from the server's offset (not from 0);
cancel asks first and then removes the upload on the server. Library: search and filter
by kind, a content's page with in-browser preview from /blobs (Range), edit title, kind
and description, where it is assigned and how many terminals hold it, and retire after
a dialog that names what goes (answering no changes nothing).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.conftest import Server
from tests.console_helpers import browser, go, page, shoot  # noqa: F401
from tests.test_fleet import beat, heartbeat

pytestmark = pytest.mark.asyncio
UNIT = "140121100"


async def test_upload_several_then_edit_preview_and_retire(page: Page, server: Server, clip: Path,
                                                           clip2: Path) -> None:
    await go(page, "upload")
    await page.set_input_files("#upload-files", [str(clip), str(clip2)])
    cards = page.locator(".upload-card")
    await expect(cards).to_have_count(2)
    await cards.nth(0).locator(".u-title").fill("冬训党课样片")
    await cards.nth(0).locator(".u-kind").select_option("lecture")
    await shoot(page, "upload-chosen")
    await page.click("#upload-all")
    await expect(page.locator(".upload-card.done")).to_have_count(2, timeout=30_000)
    await expect(cards.nth(0).locator(".u-status")).to_contain_text("完成")
    await shoot(page, "upload-done")

    await go(page, "library")
    rows = page.locator("#library-table tbody tr")
    await expect(rows).to_have_count(2)
    await page.fill("#library-search", "冬训")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("党课/讲座")
    await page.fill("#library-search", "")
    await page.select_option("#library-kind", "feature_film")
    await expect(rows).to_have_count(1)
    await expect(rows.first).not_to_contain_text("冬训党课样片")
    await page.select_option("#library-kind", "")
    poster_ok = await rows.first.locator("img").evaluate("i => i.complete && i.naturalWidth > 0")
    assert poster_ok
    await shoot(page, "library")

    async with server.http.get("/api/v1/admin/contents") as r:
        content = next(c for c in await r.json() if c["title"] == "冬训党课样片")
    async with server.http.post("/api/v1/admin/assignments", json={
            "content_id": content["id"], "scope": "unit", "target": UNIT}) as r:
        assert r.status == 201
    t1 = await server.as_terminal("T140121100001")
    await beat(t1, "T140121100001",
               heartbeat([{"sha256": content["sha256"], "state": "ready", "bytes_present": 1}]))
    await go(page, "library")
    row = page.locator("#library-table tbody tr", has_text="冬训党课样片")
    await expect(row).to_contain_text("30 个终端")  # assigned to the 30 of 清源镇
    await expect(row).to_contain_text("1 个终端")  # held by one
    await row.locator("a.title").click()

    await expect(page.locator("#usage")).to_contain_text("清源镇")
    await expect(page.locator("#usage")).to_contain_text("已下载 1 个终端")
    video = page.locator("#preview")
    await video.evaluate("v => { v.muted = true; return v.play(); }")
    await page.wait_for_function("document.querySelector('#preview').currentTime > 0.2", timeout=15_000)
    assert await video.evaluate("v => v.duration") > 4
    await shoot(page, "content")

    await page.fill("#edit-title", "冬训党课（修订）")
    await page.select_option("#edit-kind", "farming_technique")
    await page.fill("#edit-description", "第一讲")
    await page.click("#edit-form button[type=submit]")
    await expect(page.locator("#notice")).to_contain_text("已保存")
    async with server.http.get(f"/api/v1/admin/contents/{content['id']}") as r:
        changed = await r.json()
    assert (changed["title"], changed["kind"], changed["description"]) == \
        ("冬训党课（修订）", "farming_technique", "第一讲")

    await page.click("#retire")
    dialog = page.locator("dialog#confirm")
    await expect(dialog).to_contain_text("撤回全部 1 条分发（清源镇）")
    await expect(dialog).to_contain_text("T140121100001")
    await shoot(page, "retire-dialog")
    await dialog.locator("button[value=cancel]").click()
    async with server.http.get("/api/v1/admin/assignments") as r:
        assert len(await r.json()) == 1  # answering no changed nothing
    await page.click("#retire")
    await dialog.locator("button[value=ok]").click()
    await expect(page.locator("#notice")).to_contain_text("已下架")
    await expect(page.locator("#library-table tbody tr")).to_have_count(1)
    async with server.http.get("/api/v1/admin/assignments") as r:
        assert await r.json() == []


async def test_refusal_in_chinese(page: Page, tmp_path: Path) -> None:
    fake = tmp_path / "film.mp4"
    fake.write_bytes("这不是视频\n".encode() * 200)
    await go(page, "upload")
    await page.set_input_files("#upload-files", str(fake))
    await page.click(".u-start")
    status = page.locator(".upload-card.failed .u-status")
    await expect(status).to_contain_text("上传失败", timeout=30_000)
    text = (await status.inner_text()).split("上传失败：")[1]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text.split("\n")[0])  # Chinese first
    await expect(status.locator(".en")).to_contain_text("video")  # English second
    await shoot(page, "upload-refused")


async def test_a_description_too_long_for_the_upload_is_said_before_sending(
        page: Page, server: Server, clip: Path) -> None:
    await go(page, "upload")
    await page.set_input_files("#upload-files", str(clip))
    box = page.locator(".u-description")
    await box.fill("农" * 2500)  # 7,500 bytes of UTF-8, 10,000 in base64: over the header
    await page.click(".u-start")
    await expect(page.locator("#notice.error")).to_contain_text("简介太长（2500 字）")
    await expect(box).to_be_focused()
    await expect(page.locator(".upload-card progress")).to_have_js_property("value", 0)
    await box.fill("农" * 1800)  # what the notice says fits
    await page.click(".u-start")
    await expect(page.locator(".upload-card.done")).to_have_count(1, timeout=30_000)
    async with server.http.get("/api/v1/admin/contents") as r:
        (content,) = await r.json()
    assert content["description"] == "农" * 1800
    # the content's page keeps a description's own line breaks
    async with server.http.patch(f"/api/v1/admin/contents/{content['id']}",
                                 json={"description": "第一行\n第二行"}) as r:
        assert r.status == 200, await r.text()
    await go(page, f"library/{content['id']}")
    assert await page.locator("p.description").inner_text() == "第一行\n第二行"


@pytest.fixture(scope="module")
def big_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 12 MB at a constant 8 Mbit/s: several 4 MiB tus chunks."""
    path = tmp_path_factory.mktemp("big") / "big.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=640x360:rate=25", "-t", "12", "-c:v", "libx264", "-preset",
                    "ultrafast", "-b:v", "8M", "-minrate", "8M", "-maxrate", "8M", "-bufsize", "2M",
                    "-x264-params", "nal-hrd=cbr", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


async def test_pause_reload_resume_and_cancel(page: Page, server: Server, tmp_path: Path,
                                              big_clip: Path) -> None:
    film = big_clip
    size = film.stat().st_size
    assert size > 9 << 20
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 5, "downloadThroughput": -1, "uploadThroughput": 3 << 20})
    await go(page, "upload")
    await page.set_input_files("#upload-files", str(film))
    await page.click(".u-start")
    status = page.locator(".u-status")
    await expect(status).to_contain_text("速度", timeout=10_000)
    await expect(status).to_contain_text("剩余约")
    await page.wait_for_function(f"document.querySelector('.upload-card progress').value > {4 << 20}",
                                 timeout=20_000)
    await page.click(".u-pause")
    await expect(status).to_contain_text("已暂停")
    await shoot(page, "upload-paused")

    offsets: list[int] = []
    await page.reload()
    page.on("request", lambda r: offsets.append(int(r.headers["upload-offset"]))
            if r.method == "PATCH" else None)
    await expect(page.locator("#screen-upload")).to_be_visible()
    await page.set_input_files("#upload-files", str(film))
    await expect(status).to_contain_text("上次未传完")
    await page.click(".u-start")
    await expect(page.locator(".upload-card.done")).to_have_count(1, timeout=60_000)
    assert offsets and offsets[0] >= 4 << 20, offsets  # resumed, not from 0
    async with server.http.get("/api/v1/admin/contents") as r:
        assert [c["size"] for c in await r.json()] == [size]

    # Cancel: asks, then the server forgets the upload.
    other = tmp_path / "other.mp4"
    other.write_bytes(film.read_bytes()[:-100] + b"x" * 100)  # small: no loop guard trips
    await page.set_input_files("#upload-files", str(other))
    card = page.locator(".upload-card").nth(1)
    deletes: list[tuple[str, int]] = []
    page.on("response", lambda r: deletes.append((r.url, r.status))
            if r.request.method == "DELETE" else None)
    await card.locator(".u-start").click()
    await page.wait_for_function(
        "document.querySelectorAll('.upload-card progress')[1].value > 0", timeout=20_000)
    await card.locator(".u-cancel").click()
    await expect(page.locator("dialog#confirm")).to_contain_text("将被删除")
    await page.click("dialog#confirm button[value=ok]")
    await expect(page.locator(".upload-card")).to_have_count(1, timeout=15_000)
    assert deletes and deletes[-1][1] == 204, deletes  # the server removed the upload
    async with server.http.head(deletes[-1][0], headers={"Tus-Resumable": "1.0.0"}) as r:
        assert r.status in (404, 410)


async def test_dropped_link_resumes_by_itself(page: Page, server: Server, big_clip: Path) -> None:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Network.enable")
    slow = {"offline": False, "latency": 5, "downloadThroughput": -1, "uploadThroughput": 3 << 20}
    await cdp.send("Network.emulateNetworkConditions", slow)
    await go(page, "upload")
    await page.set_input_files("#upload-files", str(big_clip))
    await page.click(".u-start")
    await page.wait_for_function("document.querySelector('.upload-card progress').value > 0",
                                 timeout=20_000)
    await cdp.send("Network.emulateNetworkConditions", {**slow, "offline": True})
    status = page.locator(".u-status")
    await expect(status).to_contain_text("网络中断", timeout=15_000)  # the page says so
    await shoot(page, "upload-link-dropped")
    await cdp.send("Network.emulateNetworkConditions", {**slow, "uploadThroughput": -1})
    await expect(page.locator(".upload-card.done")).to_have_count(1, timeout=60_000)
    async with server.http.get("/api/v1/admin/contents") as r:
        assert [c["size"] for c in await r.json()] == [big_clip.stat().st_size]
