// 红本子: find a member by name or number (a choice when several match), then the
// record on its own page, printable on A4: sessions, courses, hours and minutes, and
// the year's totals against the county's targets.
import { api, viewed } from "../api.js";
import { dateTime, hoursMinutes, today } from "../fmt.js";
import { el, h2, table, empty, errorBox, button } from "../ui.js";

// Used only when the server does not send the year's totals and targets (older server):
// the server's defaults (settings member_target_sessions, member_target_hours).
const TARGET_SESSIONS = 12;
const TARGET_SECONDS = 24 * 3600;

export async function render(root, [no]) {
  if (no) return record(root, no);
  const input = el("input", { id: "member-query", required: true, placeholder: "姓名或党员序号 name or number", maxlength: 64 });
  const go = el("button", { type: "submit", class: "primary" }, "查找 Find");
  const out = el("div", { id: "member-results" });
  const form = el("form", { id: "member-form", class: "filters" }, el("label", {}, "党员 Member", input), go);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    out.replaceChildren();
    try {
      const r = await api(`/api/v1/admin/members?${new URLSearchParams({ q: input.value.trim() })}`);
      if (!r.matches.length) {
        out.replaceChildren(el("div", { class: "failure", role: "alert" }, el("strong", {}, `没有找到「${input.value.trim()}」`),
          el("p", {}, "请检查姓名或序号，或确认名册已导入。"), el("p", { class: "en" }, "No member matches.")));
        return;
      }
      if (r.matches.length === 1) { location.hash = `#/member/${encodeURIComponent(r.matches[0].member_no)}`; return; }
      out.replaceChildren(el("p", {}, `找到 ${r.matches.length}${r.truncated ? "+" : ""} 人，请选择：`, el("small", {}, " Several match; choose one.")),
        el("ul", { class: "choices", id: "member-choices" }, r.matches.map((m) => el("li", {},
          el("a", { href: `#/member/${encodeURIComponent(m.member_no)}` }, `${m.name}（${m.member_no}）`), ` ${m.unit_name} ${m.village_name} ${m.branch}`))));
    } catch (e) { out.replaceChildren(errorBox(e, "查找失败 Lookup failed")); }
  });
  root.append(h2("党员学习记录（红本子）", "Member learning record"), form, out);
  input.focus();
}

async function record(root, no) {
  root.append(el("p", { class: "no-print" }, el("a", { href: "#/member" }, "← 重新查找 Find another")));
  let r;
  try { r = await api(`/api/v1/admin/reports/members/${encodeURIComponent(no)}`); }
  catch (e) { root.append(errorBox(e, `查不到序号 ${no} 的学习记录 Lookup failed`)); return; }
  const year = r.year ? String(r.year) : today().slice(0, 4);
  const counted = r.entries.filter((e) => dateTime(e.started_at).startsWith(year) && e.counted);
  const done = r.year ? r.year_sessions : counted.length;
  const secs = r.year ? r.year_watched_seconds : counted.reduce((n, e) => n + e.watched_seconds, 0);
  const TARGET_N = r.target_sessions || TARGET_SESSIONS;
  const TARGET_S = r.target_hours ? r.target_hours * 3600 : TARGET_SECONDS;
  const page = el("article", { class: "red-book", id: "member-record" },
    el("h2", {}, `${r.name} 的学习记录`, el("small", {}, " 红本子 Learning record")),
    el("p", {}, `党员序号 ${r.member_no}　${r.village_name}`),
    el("table", { class: "totals" },
      el("thead", {}, el("tr", {}, el("th", {}, `${year} 年`), el("th", {}, "完成 Done"), el("th", {}, "目标 Target"), el("th", {}, "完成率"))),
      el("tbody", {},
        el("tr", {}, el("td", {}, "参学次数"), el("td", {}, `${done} 次`), el("td", {}, `${TARGET_N} 次`),
          el("td", { class: done >= TARGET_N ? "ok" : "below" }, `${Math.round((done / TARGET_N) * 100)}%`)),
        el("tr", {}, el("td", {}, "学习时长"), el("td", {}, hoursMinutes(secs)), el("td", {}, hoursMinutes(TARGET_S)),
          el("td", { class: secs >= TARGET_S ? "ok" : "below" }, `${Math.round((secs / TARGET_S) * 100)}%`)))),
    el("p", { class: "small" }, `累计：参学 ${r.sessions} 次，计入受训 ${r.counted_sessions} 次，观看 ${hoursMinutes(r.watched_seconds)}。`),
    r.entries.length ? table([
      { label: "时间", en: "When", value: (e) => e.started_at, render: (e) => dateTime(e.started_at) },
      { label: "地点", en: "Where", value: (e) => e.village_name },
      { label: "学习内容", en: "Courses", value: (e) => e.contents || e.title },
      { label: "时长", en: "Watched", value: (e) => e.watched_seconds, render: (e) => hoursMinutes(e.watched_seconds) },
      { label: "计入", en: "Counted", value: (e) => e.counted, render: (e) => e.counted ? "是" : "否" },
    ], r.entries, { id: "record-table" }) : empty("还没有学习记录。", "No sessions yet."),
    el("p", { class: "signature" }, "打印日期：", today(), "　　审核人：__________"));
  root.append(el("p", { class: "no-print" }, button("打印 Print (A4)", () => window.print(), "primary"), " ",
    el("a", { class: "button", href: viewed(`/api/v1/admin/reports/members/${encodeURIComponent(no)}?format=xlsx`) }, "导出 XLSX"), " ",
    el("a", { class: "button", href: viewed(`/api/v1/admin/reports/members/${encodeURIComponent(no)}?format=csv`) }, "导出 CSV")), page);
}
