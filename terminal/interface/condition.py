"""One owner of the terminal's condition: what keeps it from being fully well, as an
enum with its words.

`assess()` takes the facts (enrolled, the syncer's state, the catalog, the link, the
clock, held records) and gives both forms: the one-line English condition the heartbeat
and the fleet view carry ("ok", "disk full: …", "stale: …", held records …) and the
`Problem`s the TV's home screen and `status` show, each in Chinese with what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from terminal.interface.snapshot import Problem


class Condition(StrEnum):
    NOT_ENROLLED = "not_enrolled"
    DISK_FULL = "disk_full"
    CATALOG_STALE = "catalog_stale"
    NO_CATALOG = "no_catalog"
    NO_LINK = "no_link"
    CLOCK_UNCONFIRMED = "clock_unconfirmed"
    RECORDS_HELD = "records_held"

    @property
    def problem(self) -> Problem:
        message, action = WORDS[self]
        return Problem(code=self.value, message=message, action=action)


WORDS: dict[Condition, tuple[str, str]] = {
    Condition.NOT_ENROLLED: ("这台终端还没有注册",
                             "在「设置」里选「终端注册」，输入县里给的 16 位注册码"),
    Condition.DISK_FULL: ("存储空间已满，新课程暂停下载",
                          "已下载的课程照常放映；请联系县里撤下旧课程腾出空间"),
    Condition.CATALOG_STALE: ("课程表已过期，只能放映已下载的课程",
                              "请检查网络；连上县里的服务器后会自动更新"),
    Condition.NO_CATALOG: ("还没有收到课程表", "请检查网络；连上县里的服务器后会自动下载"),
    Condition.NO_LINK: ("连不上县里的服务器",
                        "检查网线和路由器；课程照常放映，签到记录联网后自动上传"),
    Condition.CLOCK_UNCONFIRMED: ("时钟还没有和县里的服务器核对", "放映照常进行；联网后自动核对"),
    Condition.RECORDS_HELD: ("有签到记录被县里退回，稍后会自动重发",
                             "不用操作；如果一直这样，请联系县里"),
}

STALE_LINE = "stale: the catalog has expired; playing the cache, adding nothing new"


@dataclass(frozen=True)
class Facts:
    enrolled: bool
    syncer: str  # the syncer's own condition line ("ok", "disk full: …", "waiting for …")
    stale: bool
    has_catalog: bool
    link: str  # "connected", "searching" or why the server is out of reach
    clock_confirmed: bool
    held: int  # records the server refused, held and offered again
    refusal: str = ""  # the server's words on the last of them


def assess(f: Facts) -> tuple[str, list[Problem]]:
    """(the English condition line, the problems in the site manager's words)."""
    line = f.syncer if f.syncer != "ok" else "ok"
    if f.stale:
        line = STALE_LINE
    if line == "ok" and f.held:  # the county sees it in the fleet view
        line = f"{f.held} record(s) refused by the server, held and offered again later: {f.refusal}"
    if not f.enrolled:
        return line, [Condition.NOT_ENROLLED.problem]
    found: list[Condition] = []
    if f.syncer.startswith("disk full"):
        found.append(Condition.DISK_FULL)
    if f.stale:
        found.append(Condition.CATALOG_STALE)
    elif not f.has_catalog:
        found.append(Condition.NO_CATALOG)
    if f.link not in ("connected", "searching"):
        found.append(Condition.NO_LINK)
    if not f.clock_confirmed:
        found.append(Condition.CLOCK_UNCONFIRMED)
    if f.held:
        found.append(Condition.RECORDS_HELD)
    return line, [c.problem for c in found]
