"""Upload refusals are true and readable, and stored facts are what a viewer sees.

* A file is refused only for a reason the terminals really have: sound only ("no video
  stream"), empty, too large, a codec libvlc does not play (a RealMedia file then is
  named as such), not readable. Windows Media (.wmv), a DVD title file (.VOB) and
  RealMedia (.rmvb, which the terminals' libvlc decodes) are accepted.
* Every refusal has a specific code, a Chinese `message` and an English `message_en`
  that both say the fix, and neither contains a server path or ffmpeg's own text.
* A portrait phone video (landscape pixels plus a 90° display matrix) is stored
  portrait: width and height as displayed.
* The tus core's X-HTTP-Method-Override: POST acts as PATCH or DELETE.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest

from server.media import probe
from server.messages import chinese
from tests import tusclient
from tests.conftest import REPO, Server, make_clip, serve, server_config

pytestmark = pytest.mark.asyncio
VIDEO = REPO / "tests" / "field_cases" / "video"


def assert_readable(err: dict[str, Any], server: Server) -> None:
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err["message"])
    for text in (err["message"], err["message_en"]):
        assert str(server.config.data_dir) not in text and "/tmp" not in text
        for internal in ("Invalid data found", "moov atom", "ffprobe", "ffmpeg", "Traceback"):
            assert internal not in text


async def refusal(server: Server, data: bytes, filename: str) -> dict[str, Any]:
    r = await tusclient.upload(server.http, data, title="片子", filename=filename)
    assert r.status == 422
    err: dict[str, Any] = (await r.json())["error"]
    assert_readable(err, server)
    async with server.http.get("/api/v1/admin/contents") as cr:
        assert await cr.json() == []
    assert list(server.config.uploads_dir.glob("*.part")) == []
    return err


async def test_realmedia_is_accepted_because_terminals_play_it(server: Server) -> None:
    data = (VIDEO / "partyfilm.rmvb").read_bytes()
    r = await tusclient.upload(server.http, data, title="党课老片", filename="partyfilm.rmvb")
    assert r.status == 204, await r.text()
    async with server.http.get(f"/api/v1/admin/contents/{r.headers['Yuanjiao-Content-Id']}") as cr:
        content = await cr.json()
    assert (content["container"], content["video_codec"]) == ("rm", "rv20")


async def test_realmedia_the_terminals_cannot_play_is_named() -> None:
    with pytest.raises(probe.ProbeError) as refused:
        probe.media_info({"format": {"format_name": "rm", "duration": "60"},
                          "streams": [{"codec_type": "video", "codec_name": "rv60"}]})
    assert refused.value.code == "realmedia"
    assert "RealMedia" in str(refused.value) and "H.264 MP4" in str(refused.value)
    zh = chinese(refused.value.code, 422, refused.value.details)
    assert "RealMedia" in zh and "rv60" in zh and "MP4" in zh


async def test_audio_only_says_no_video_stream(server: Server) -> None:
    err = await refusal(server, (VIDEO / "audio_only.mp3").read_bytes(), "lecture.mp3")
    assert err["code"] == "audio_only"
    assert "没有视频画面" in err["message"]
    assert "no video stream" in err["message_en"] and "not a readable" not in err["message_en"]


async def test_garbage_is_unreadable_without_internals(server: Server) -> None:
    err = await refusal(server, b"MZ" + bytes(range(256)) * 40, "film.mp4")
    assert err["code"] == "unreadable_video"
    assert "not a readable video" in err["message_en"]


async def test_empty_and_too_large(tmp_path: Path) -> None:
    async with serve(server_config(tmp_path, max_upload_bytes=1 << 20)) as (_running, http):
        r = await tusclient.create(http, 0, title="t")
        assert r.status == 400
        async with http.post("/api/v1/uploads", headers={**tusclient.TUS, "Upload-Length": "0"}) as r2:
            err = (await r2.json())["error"]
        assert err["code"] == "empty_file" and "空" in err["message"] and "empty" in err["message_en"]
        async with http.post("/api/v1/uploads",
                             headers={**tusclient.TUS, "Upload-Length": str(5 << 20)}) as r3:
            assert r3.status == 413
            err = (await r3.json())["error"]
        assert err["code"] == "upload_too_large"
        assert "5.0 MB" in err["message"] and "1.0 MB" in err["message"] and "H.264" in err["message"]
        assert "lower bit rate" in err["message_en"]


@pytest.mark.parametrize(("name", "codec", "container"), [
    ("lecture.wmv", "wmv2", "asf"), ("dvd_VTS_01_1.VOB", "mpeg2video", "mpeg"),
])
async def test_windows_media_and_dvd_accepted(server: Server, name: str, codec: str,
                                              container: str) -> None:
    r = await tusclient.upload(server.http, (VIDEO / name).read_bytes(), title=name, filename=name)
    assert r.status == 204, await r.text()
    async with server.http.get(f"/api/v1/admin/contents/{r.headers['Yuanjiao-Content-Id']}") as cr:
        content = await cr.json()
    assert content["video_codec"] == codec and content["container"] == container
    assert (content["width"], content["height"]) == (320, 240)


async def test_portrait_phone_video_is_stored_portrait(server: Server, tmp_path: Path) -> None:
    landscape = await asyncio.to_thread(make_clip, tmp_path / "land.mp4", seconds=1, size="320x180")
    phone = tmp_path / "phone.mp4"
    await asyncio.to_thread(
        subprocess.run, ["ffmpeg", "-v", "error", "-nostdin", "-i", str(landscape), "-c", "copy",
                         "-metadata:s:v:0", "rotate=90", str(phone)], check=True)  # a display matrix
    r = await tusclient.upload(server.http, phone.read_bytes(), title="手机竖拍", filename="phone.mp4")
    assert r.status == 204, await r.text()
    async with server.http.get(f"/api/v1/admin/contents/{r.headers['Yuanjiao-Content-Id']}") as cr:
        content = await cr.json()
    assert (content["width"], content["height"]) == (180, 320)


async def test_method_override_patch_and_delete(server: Server, clip: Path) -> None:
    data = clip.read_bytes()
    created = await tusclient.create(server.http, len(data), title="override")
    location = created.headers["Location"]
    headers = {**tusclient.TUS, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH",
               "Content-Type": "application/offset+octet-stream"}
    async with server.http.post(location, data=data[:1000], headers=headers) as r:
        assert r.status == 204 and r.headers["Upload-Offset"] == "1000"
    async with server.http.head(location, headers=tusclient.TUS) as r:
        assert r.headers["Upload-Offset"] == "1000"
    async with server.http.post(location, headers={**tusclient.TUS,
                                                   "X-HTTP-Method-Override": "DELETE"}) as r:
        assert r.status == 204
    async with server.http.head(location, headers=tusclient.TUS) as r:
        assert r.status == 404
    async with server.http.post(location, headers=tusclient.TUS) as r:
        assert r.status == 405 and "PATCH" in r.headers["Allow"]
