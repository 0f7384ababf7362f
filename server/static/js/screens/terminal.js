// 终端详情: one terminal point: state, heartbeat figures, its months against the county
// rule (its history), and for an admin an enrollment code or revoking it.
import { api, canWrite } from "../api.js";
import { fleet, forget } from "../data.js";
import { bytes, dateTime, ago, today, skew, hoursMinutes } from "../fmt.js";
import { el, h2, table, empty, notice, flash, confirmDialog, busy, button } from "../ui.js";
import { stateOf, daysSilent, STATES } from "../state.js";
import { makeCodes } from "./fleet.js";

export async function render(root, [id]) {
  forget("/api/v1/admin/fleet");
  const f = await fleet();
  const t = f.terminals.find((x) => x.id === id);
  root.append(el("p", {}, el("a", { href: "#/fleet" }, "← 返回终端 Back to terminals")));
  if (!t) { root.append(el("div", { class: "failure", role: "alert" }, el("strong", {}, `没有终端 ${id}`), el("p", { class: "en" }, "No such terminal"))); return; }
  const s = stateOf(t);
  const year = today().slice(0, 4);
  const [months, records] = await Promise.all([
    api(`/api/v1/admin/reports/terminals?from=${year}-01-01&to=${today()}`),
    api(`/api/v1/admin/terminals/${encodeURIComponent(id)}/attendance?limit=30`)]);
  const mine = months.rows.filter((r) => r.terminal_id === id);
  root.append(h2(`${t.village_name} ${t.id}`, "Terminal"),
    el("dl", { class: "facts", id: "terminal-facts" },
      el("dt", {}, "乡镇"), el("dd", {}, t.unit_name),
      el("dt", {}, "状态"), el("dd", { class: STATES[s].cls }, STATES[s].zh + (s === "offline_days" ? ` ${daysSilent(t)} 天` : "")),
      el("dt", {}, "最后在线"), el("dd", {}, t.last_seen ? `${dateTime(t.last_seen)}（${ago(t.last_seen)}）` : "从未"),
      el("dt", {}, "地址"), el("dd", {}, t.last_address || "—"),
      el("dt", {}, "版本"), el("dd", {}, t.software_version || "—"),
      el("dt", {}, "磁盘剩余"), el("dd", {}, `${bytes(t.disk_free)} / ${bytes(t.disk_total)}`),
      el("dt", {}, "时钟偏差"), el("dd", { class: t.clock_problem ? "warn" : null }, `${skew(t.clock_skew_seconds)}${t.clock_problem ? "（时钟有问题）" : ""}`),
      el("dt", {}, "待上报记录"), el("dd", {}, t.outbox_backlog ?? "—"),
      el("dt", {}, "已就绪内容"), el("dd", {}, `${t.ready_items} 个`)),
    el("h3", {}, `${year} 年各月 History by month`),
    mine.length ? table([
      { label: "月份", en: "Month", value: (r) => r.month },
      { label: "场次", en: "Sessions", value: (r) => r.sessions, num: true },
      { label: "学时", en: "Hours", value: (r) => r.hours, render: (r) => `${r.hours} 小时`, num: true },
      { label: "参学人次", en: "Attendances", value: (r) => r.attendances, num: true },
      { label: "达标", en: "Meets rule", value: (r) => r.meets_rule, render: (r) => r.meets_rule ? "达标" : "未达标", cls: (r) => r.meets_rule ? "" : "below" },
    ], mine, { id: "terminal-months" }) : empty("今年还没有记录。", "No records this year."),
    el("h3", {}, "最近的学习记录 Latest sessions held"),
    records.length ? table([
      { label: "开始", en: "Started", value: (r) => r.started_at, render: (r) => dateTime(r.started_at) },
      { label: "名称", en: "Title", value: (r) => r.title || "—" },
      { label: "时长", en: "Length", value: (r) => r.watched_seconds, render: (r) => hoursMinutes(r.watched_seconds) },
      { label: "人数", en: "People", value: (r) => r.attendees, num: true },
      { label: "收到", en: "Received", value: (r) => r.received_at, render: (r) => dateTime(r.received_at) },
    ], records, { id: "terminal-records" }) : empty("还没有上报过学习记录。", "No attendance reported yet."));
  if (!canWrite()) return;
  const code = button("生成登记码 Enrollment code…", () => busy(code, () => makeCodes([id])), "primary");
  const revoke = button("吊销 Revoke…", () => busy(revoke, async () => {
    const ok = await confirmDialog({ title: `吊销终端 ${id}（${t.village_name}）？`, confirm: "吊销 Revoke",
      body: [el("p", {}, "它的令牌立即失效：不能再下载内容、不能上报签到，直到用新登记码重新登记。"),
        el("p", { class: "en" }, "Its tokens stop working at once until it is enrolled again.")] });
    if (!ok) return;
    await api(`/api/v1/admin/terminals/${id}/revoke`, { method: "POST" });
    flash(`${id} 已吊销`, "Revoked");
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  }), "danger");
  revoke.id = "revoke";
  root.append(el("div", { class: "buttons" }, code, " ", revoke));
}
