// 待确认记录: attendance the server could not place with confidence (a clock not yet
// confirmed, an end after receipt, members not on the roster); an admin confirms the
// start time. An older server without the endpoint shows an empty state.
import { api, canWrite } from "../api.js";
import { countyToDate, dateTime, day, timeOfDay, hoursMinutes } from "../fmt.js";
import { el, h2, table, empty, notice, flash, confirmDialog } from "../ui.js";

const REASONS = {
  clock_unconfirmed: "终端时钟未确认",
  ends_after_received: "结束时间晚于收到时间",
  ends_before_start: "结束早于开始",
  not_on_roster: "有人不在名册上",
};

export async function render(root) {
  root.append(h2("待确认记录", "Attendance to confirm"));
  let data;
  try { data = await api("/api/v1/admin/attendance/flagged"); }
  catch (e) {
    if (e.status === 404) { root.append(empty("没有需要确认的记录。", "Nothing to confirm.")); return; }
    throw e;
  }
  const rows = data.records || [];
  if (!rows.length) { root.append(empty("没有需要确认的记录。", "Nothing to confirm.")); return; }
  root.append(el("p", { class: "hint" }, "这些签到记录的时间或人员有疑问，确认开始时间后才计入报表。"), table([
    { label: "村（社区）", en: "Village", value: (r) => r.village_name },
    { label: "名称", en: "Title", value: (r) => r.title },
    { label: "终端报的开始", en: "Reported start", value: (r) => r.reported_started_at, render: (r) => dateTime(r.reported_started_at) },
    { label: "收到时间", en: "Received", value: (r) => r.received_at, render: (r) => dateTime(r.received_at) },
    { label: "观看", en: "Watched", value: (r) => r.watched_seconds, render: (r) => hoursMinutes(r.watched_seconds) },
    { label: "人数", en: "People", value: (r) => r.attendees, num: true },
    { label: "原因", en: "Why", value: (r) => r.reasons.map((x) => REASONS[x] || x).join("、") },
    ...(canWrite() ? [{ label: "", render: (r) => el("button", { type: "button", class: "primary confirm-record", onclick: () => confirmOne(r) }, "确认 Confirm…") }] : []),
  ], rows, { id: "flagged-table" }));
}

async function confirmOne(r) {
  const start = r.started_at || r.reported_started_at;
  const d = el("input", { id: "flagged-day", value: start ? day(start) : "" });
  const t = el("input", { id: "flagged-time", value: start ? timeOfDay(start) : "" });
  const ok = await confirmDialog({ title: `确认「${r.title}」（${r.village_name}）的开始时间`, confirm: "确认 Confirm", danger: false,
    body: [el("p", {}, "确认后这条记录计入报表。"), el("label", {}, "日期 Date", d), el("label", {}, "时间 Time", t)] });
  if (!ok) return;
  const at = countyToDate(d.value, t.value);
  if (!at) return notice("日期应写成 2026-12-01，时间 19:30。", "Date as YYYY-MM-DD, time HH:mm.", "error");
  try {
    await api(`/api/v1/admin/attendance/flagged/${encodeURIComponent(r.terminal_id)}/${encodeURIComponent(r.record_id)}/confirm`,
      { method: "POST", json: { started_at: at.toISOString() } });
    flash("已确认 Confirmed");
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } catch (e) { notice(e.zh, e.en, "error"); }
}
