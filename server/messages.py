"""The Chinese text of every error code: one table, code -> templates.

An error body's `message` is Chinese (people read Chinese first), `message_en` is the
English text the raise site gave. Each code has one or more templates, most specific
first: a template is used when every `{name}` in it is in the error's details, so a
raise site that passes details gets a specific message and one that does not still
gets a true, general one. A code missing from the table falls back to its HTTP status.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

ZH: dict[str, tuple[str, ...]] = {
    "internal": ("服务器内部出错；县管理员可在服务器日志中查看详情",),
    "database_unavailable": ("数据库暂时连不上，数据都还在：请 {retry_after} 秒后重试",
                             "数据库暂时连不上，数据都还在：请稍后重试"),
    "bad_request": ("请求有误：{problem}", "请求有误，请检查后重试"),
    "bad_number": ("{name} 必须是 {low} 到 {high} 之间的整数，只能用半角数字 0–9（收到 {value}）",
                   "{name} 必须是整数，只能用半角数字 0–9（收到 {value}）",
                   "数字格式有误：只能用半角数字 0–9"),
    "missing_header": ("缺少请求头 {name}", "缺少必需的请求头"),
    "bad_header": ("请求头 {name} 的格式有误", "请求头格式有误"),
    "invalid_json": ("请求内容不是有效的 JSON",),
    "nul_character": ("{path} 处的文字含有空字符（\\u0000），无法保存：请去掉后重新提交",
                      "文字中含有空字符（\\u0000），无法保存：请去掉后重新提交"),
    "invalid_body": ("提交的数据不符合要求：{path} 最多 {most} 项（或字符）",
                     "提交的数据不符合要求：{path} 至少 {least} 项（或字符）",
                     "提交的数据不符合要求（位置 {path}）", "提交的数据不符合要求"),
    "unauthorized": ("未登录或凭据无效，请重新登录",),
    "bad_login": ("用户名或密码不对",),
    "forbidden": ("没有权限执行此操作",),
    "csrf": ("页面已过期（安全校验失败），请刷新页面后重试",),
    "read_only": ("只读账号不能修改数据，请用管理员账号操作",),
    "province_only": ("县级账号（县 {county}）不能使用此功能：这是省级管理员的工作，或本功能尚未按县分开",
                      "县级账号不能使用此功能：这是省级管理员的工作"),
    "terminal_revoked": ("该终端已被吊销，请县管理员重新生成注册码",),
    "wrong_terminal": ("该终端的凭据不能用于其他终端",),
    "not_found": ("找不到{what} {id}", "找不到所请求的内容或地址"),
    "method_not_allowed": ("此地址不支持这种请求方法",),
    "conflict": ("与现有数据冲突，请刷新后重试",),
    "gone": ("上传已过期，请重新上传文件",),
    "precondition_failed": ("请求的前提条件不满足",),
    "tus_version": ("本服务器使用 tus 1.0.0 上传协议，请发送 Tus-Resumable: 1.0.0",),
    "too_large": ("文件太大：最多 {limit}", "文件或请求内容太大"),
    "unsupported_media_type": ("请求内容的类型不对（应为 {expected}）", "请求内容的类型不对"),
    "range_not_satisfiable": ("请求的字节范围超出了文件大小",),
    "unprocessable": ("无法处理该请求",),
    "too_many_requests": ("尝试次数过多，请 {retry_after} 秒后再试", "尝试次数过多，请稍后再试"),
    "checksum_mismatch": ("这一段数据的校验和不符，已丢弃，请重新发送",),
    "account_locked": ("这个账号因多处多次密码错误暂时锁定，请 {retry_after} 秒后再试，"
                       "或在以前登录过的浏览器上登录",
                       "这个账号因多次密码错误暂时锁定，请稍后再试"),
    "insufficient_storage": ("服务器磁盘已满：上传已保留到第 {offset} 字节，清理空间后可从此处继续上传",
                             "服务器磁盘已满，本次数据未保存，请 {retry_after_seconds} 秒后重试"
                             "（需县管理员清理空间）",
                             "服务器磁盘空间不足，请联系县管理员清理空间后再上传"),
    "http_error": ("请求未能完成",),
    "service_unavailable": ("服务器暂时无法处理，请 {retry_after} 秒后重试",
                            "服务器暂时无法处理，请稍后重试"),
    "upload_storing": ("文件已全部收到，正在存入媒体库，请 {retry_after} 秒后再查看",
                       "文件已全部收到，正在存入媒体库，请稍后再查看"),
    "store_unavailable": ("媒体存储（对象存储桶）暂时连不上：已收到的文件完好保留，服务器会自动重试，"
                          "请 {retry_after} 秒后再试；若持续出现，请县管理员检查存储服务",
                          "媒体存储暂时连不上，已收到的文件完好保留，请稍后再试"),
    # content and distribution
    "unknown_content": ("没有这个内容：{ids}", "所选的内容不存在"),
    "unknown_village": ("本县没有这个村（社区）代码：{codes}", "所选的村（社区）不存在"),
    "unknown_target": ("本县没有这个分发对象",),
    "missing_target": ("分发到乡镇、村或终端时，请填写对应的代码",),
    "terminal_exists": ("终端站点 {id} 已经存在", "这个终端站点已经存在"),
    "unknown_terminal": ("没有这个终端站点",),
    "unknown_member": ("名册中没有序号为 {id} 的党员", "名册中没有这个序号的党员"),
    "unknown_county": ("没有县代码为 {code} 的县：请先导入该县的乡镇", "没有这个县：请先导入该县的乡镇"),
    "bad_enrollment_code": ("注册码无效或已用过，请向县管理员索取新的注册码",),
    "unknown_record": ("站点 {terminal_id} 没有待确认的记录 {record_id}", "没有这条待确认的记录"),
    "bad_time": ("记录在 {received_at} 收到，不能在此之后结束；请给出更早的开始时间",
                 "开始时间不合理：不能早于收到记录前十年"),
    "already_retired": ("这个内容已经停用，无需再停用",),
    "province_content": ("《{title}》是全省共用的内容：县级账号可以使用它，只有省级管理员能修改或下架",
                         "这是全省共用的内容：县级账号可以使用它，只有省级管理员能修改或下架"),
    "province_assignment": ("这条分发面向全省所有终端，只有省级管理员能撤回；"
                            "本县可以另行分发，或撤回本县自己的分发",),
    "county_content": ("《{title}》是{county}自己的内容，只能分发到该县："
                       "要用到别处，请先在片库里把它设为全省共用",
                       "县自己的内容只能分发到该县：要用到别处，请先在片库里把它设为全省共用"),
    "stays_province": ("全省共用的内容不能改回某县自己的内容",),
    "content_of_another_county": (
        "这个视频已是{county}自己的内容《{title}》，本县用不到它："
        "请省级管理员在片库里把它设为全省共用，之后各县都能使用",
        "这个视频已是另一个县自己的内容：请省级管理员在片库里把它设为全省共用，之后各县都能使用"),
    "in_the_past": ("开始时间已经过去，请选择将来的时间",),
    "session_past": ("这次学习已经举行过，不能再修改",),
    "empty_roster": ("{problem}",),
    "period_reversed": ("{problem}",),
    "period_too_long": ("时间段最长 {months} 个月，请缩短查询的时间段",),
    "empty_query": ("请输入党员编号或姓名（的一部分）再查找",),
    # USB bundles and sharing between terminals
    "bad_directory": ("请填写 U 盘在服务器上的完整路径，例如 /media/usb0",),
    "not_a_usb_folder": ("这个文件夹不是插入的 U 盘：请插好 U 盘，填写它挂载的文件夹（如 /media/usb0）",),
    "no_terminals": ("请选择乡镇、终端，或“全部离线终端”",),
    "bundle_refused": ("U 盘数据包未能完成：{reason}", "U 盘数据包未能完成，原因见下方英文说明；"
                       "常见原因：所选终端尚未注册，或 U 盘上没有本县的数据"),
    "stick_unwritable": ("U 盘写不进去（已满、只读或已拔出）：请换一个 U 盘或清理空间后重试",),
    "stick_unreadable": ("U 盘读不出来（已拔出或已损坏）：请重新插好 U 盘后重试",),
    "no_terminal_key": ("这个终端注册时没有生成自己的密钥：请向县管理员索取新注册码重新注册后才能互传",),
    "bad_public_key": ("终端发来的公钥格式不对，请升级终端软件后重新注册",),
    "invalid_record": ("学习记录有误，未被接受",),
    "record_conflict": ("同一编号的学习记录内容不同，未被接受",),
    # uploads: what the terminals cannot play, and what to do about it
    "not_a_video": ("这个文件不能作为视频使用，请转换为 H.264 编码的 MP4 后再上传",),
    "realmedia": ("这个 RealMedia（.rm/.rmvb）文件的视频编码 {codec} 终端无法播放，请用格式工厂等"
                  "工具转换为 H.264 编码的 MP4 后再上传",
                  "这个 RealMedia（.rm/.rmvb）文件终端无法播放，请转换为 H.264 编码的 MP4 后再上传"),
    "audio_only": ("这个文件只有声音，没有视频画面。请上传视频文件；录音请先配上画面制成 MP4",),
    "upload_too_large": ("文件太大（{size}），服务器最多接受 {limit}；请剪短视频或降低码率导出为 "
                         "H.264 编码的 MP4 后再上传", "文件太大，请剪短视频或降低码率后再上传"),
    "empty_file": ("文件是空的（0 字节），请重新选择视频文件",),
    "unsupported_codec": ("终端无法播放 {codec} 编码的视频，请转换为 H.264 编码的 MP4 后再上传",
                          "终端无法播放这种视频编码，请转换为 H.264 编码的 MP4 后再上传"),
    "unsupported_container": ("终端无法播放这种文件格式，请转换为 H.264 编码的 MP4 后再上传",),
    "unreadable_video": ("文件无法读取为视频（可能不是视频、已损坏或没有传完整），请检查文件后重新上传",),
    "no_duration": ("视频没有时长（文件为空或不完整），请重新导出后再上传",),
    "probe_timeout": ("在 {seconds} 秒内未能读完这个文件，请转换为 H.264 编码的 MP4 后再上传",
                      "未能在规定时间内读完这个文件，请转换为 H.264 编码的 MP4 后再上传"),
    # the roster
    "bad_roster": ("花名册无法读取：{reason_zh}", "花名册无法读取，请从表格软件另存为 CSV 或 XLSX"),
    "roster_too_big": ("花名册表格解压后过大或压缩比异常（{detail}），为安全起见未打开；"
                       "请检查文件，或分成几个文件导入",
                       "花名册表格解压后过大或压缩比异常，为安全起见未打开"),
}

_BY_STATUS = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 410: "gone", 412: "precondition_failed",
    413: "too_large", 415: "unsupported_media_type", 416: "range_not_satisfiable",
    422: "unprocessable", 429: "too_many_requests", 460: "checksum_mismatch",
    503: "service_unavailable", 507: "insufficient_storage",
}
_FORMATTER = string.Formatter()


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in _FORMATTER.parse(template) if name}


def chinese(code: str, status: int, details: Mapping[str, object] | None = None) -> str:
    """The Chinese message for `code` (falling back to `status`), filled from `details`."""
    templates = ZH.get(code) or ZH.get(_BY_STATUS.get(status, ""), ()) or ZH["internal" if status >= 500
                                                                            else "http_error"]
    values = {k: _text(v) for k, v in (details or {}).items()}
    for template in templates:
        if _fields(template) <= values.keys():
            return template.format_map(values)
    return ZH["http_error"][0]


def _text(value: object) -> str:
    if isinstance(value, list | tuple | set):
        return "、".join(str(v) for v in value)
    return str(value)
