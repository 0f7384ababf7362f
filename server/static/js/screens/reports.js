// 报表: coverage by township (bars) and village (sortable, naming the township), the
// monthly trend (lines), stations below the county rule highlighted; the period and the
// counting rule on the page; CSV and XLSX.
import { api, viewed } from "../api.js";
import { villages as villageList } from "../data.js";
import { countyToDate, day, today, percent } from "../fmt.js";
import { el, h2, table, empty, notice, errorBox } from "../ui.js";

const charts = [];
const MAX_MONTHS = 36; // the server's limit (period_too_long)

// What is wrong with a period typed as two YYYY-MM-DD days, as [zh, en], or null.
function periodProblem(a, b) {
  const real = (s) => s === s.trim() && countyToDate(s) !== null;  // a day the calendar has
  if (!real(a) || !real(b)) return ["日期应写成 2026-01-31，且是日历上有的日子。", "Dates as YYYY-MM-DD, real days."];
  if (b < a) return ["结束日期早于开始日期，请检查两个日期。", "The end is before the start."];
  const months = (+b.slice(0, 4) - +a.slice(0, 4)) * 12 + +b.slice(5, 7) - +a.slice(5, 7) + 1;
  if (months > MAX_MONTHS) return [`统计期间最长 ${MAX_MONTHS} 个月，请缩短。`, `At most ${MAX_MONTHS} months.`];
  return null;
}

export async function render(root, [fromArg, toArg]) {
  const year = today().slice(0, 4);
  const from = el("input", { id: "report-from", value: fromArg || `${year}-01-01`, inputmode: "numeric" });
  const to = el("input", { id: "report-to", value: toArg || today(), inputmode: "numeric" });
  const go = el("button", { type: "submit", class: "primary" }, "查询 Show");
  const form = el("form", { id: "report-form", class: "filters" }, el("label", {}, "从 From", from), el("label", {}, "到 To", to), go);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const problem = periodProblem(from.value, to.value);
    if (problem) return notice(...problem, "error");
    location.hash = `#/reports/${from.value}/${to.value}`;
  });
  const q = new URLSearchParams({ from: from.value, to: to.value });
  let cov, months, villages;
  try {
    [cov, months, villages] = await Promise.all([
      api(`/api/v1/admin/reports/coverage?${q}`), api(`/api/v1/admin/reports/terminals?${q}`), villageList()]);
  } catch (e) {
    // a refused period (typed into the address) keeps the form, to be put right here
    if (e.status !== 400 && e.status !== 422) throw e;
    root.append(h2("报表", "Reports"), form, errorBox(e, "这个统计期间无法查询 This period cannot be shown"));
    return;
  }
  const unitOf = new Map(villages.map((v) => [v.code, v.unit_name]));
  const county = cov.rows.find((r) => r.level === "county");
  const units = cov.rows.filter((r) => r.level === "unit");
  const vrows = cov.rows.filter((r) => r.level === "village");
  const link = (path, fmt, label) => el("a", { class: "button", href: viewed(`${path}?${new URLSearchParams({ from: from.value, to: to.value, format: fmt })}`), download: "" }, label);
  const mins = Math.round(cov.min_seconds / 60);
  root.append(h2("报表", "Reports"), form,
    el("div", { class: "rule", id: "report-rule" },
      el("p", {}, `统计期间：${from.value} 至 ${to.value}（北京时间）`),
      el("p", {}, `计入受训：一场学习观看满 ${mins >= 1 ? `${mins} 分钟` : `${cov.min_seconds} 秒`}；受训率 = 参学党员 ÷ 名册党员。`),
      el("p", {}, `县规定：每个站点每月至少 ${months.rule_sessions} 场、${months.rule_hours} 学时。`),
      el("p", { class: "en" }, "Period in county time; a member counts as trained after watching the minimum in a session.")),
    el("p", { class: "big", id: "county-rate" }, `全县受训率 ${percent(county.rate)}`, el("small", {}, `（${county.trained} / ${county.members} 人）`)),
    el("div", { class: "exports" }, "导出 Export：", link("/api/v1/admin/reports/coverage", "csv", "受训率 CSV"), link("/api/v1/admin/reports/coverage", "xlsx", "受训率 XLSX"),
      link("/api/v1/admin/reports/terminals", "csv", "站点月报 CSV"), link("/api/v1/admin/reports/terminals", "xlsx", "站点月报 XLSX")));

  for (const c of charts.splice(0)) c.destroy();
  const Chart = window.Chart;
  const barBox = el("div", { class: "chart" }, el("canvas", { id: "units-chart", "aria-label": "各乡镇受训率" }));
  const lineBox = el("div", { class: "chart" }, el("canvas", { id: "trend-chart", "aria-label": "每月场次和学时" }));
  root.append(el("h3", {}, "各乡镇受训率 Coverage by township"), barBox);
  const byMonth = new Map();
  for (const r of months.rows) {
    const m = byMonth.get(r.month) || { sessions: 0, hours: 0, below: 0, stations: 0 };
    m.sessions += r.sessions; m.hours += r.hours; m.stations += 1; m.below += r.meets_rule ? 0 : 1;
    byMonth.set(r.month, m);
  }
  const monthKeys = [...byMonth.keys()].sort();
  root.append(el("h3", {}, "每月趋势 Monthly trend"), lineBox);
  if (Chart) {
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.animation = false;
    charts.push(new Chart(barBox.firstChild, {
      type: "bar",
      data: { labels: units.map((u) => u.name), datasets: [{ label: "受训率 %", data: units.map((u) => +(u.rate * 100).toFixed(1)), backgroundColor: "#a4161a" }] },
      options: { maintainAspectRatio: false, indexAxis: units.length > 8 ? "y" : "x", scales: { x: { beginAtZero: true }, y: { beginAtZero: true } } },
    }));
    charts.push(new Chart(lineBox.firstChild, {
      type: "line",
      data: { labels: monthKeys, datasets: [
        { label: "场次 sessions", data: monthKeys.map((k) => byMonth.get(k).sessions), borderColor: "#a4161a", yAxisID: "y" },
        { label: "学时 hours", data: monthKeys.map((k) => Math.round(byMonth.get(k).hours)), borderColor: "#1f5fa8", yAxisID: "y1" },
        { label: "未达标站点 below rule", data: monthKeys.map((k) => byMonth.get(k).below), borderColor: "#d08a00", yAxisID: "y" },
      ] },
      options: { maintainAspectRatio: false, scales: { y: { beginAtZero: true, position: "left" }, y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } } } },
    }));
  }

  const last = monthKeys[monthKeys.length - 1];
  const below = months.rows.filter((r) => r.month === last && !r.meets_rule);
  root.append(el("h3", {}, `${last || ""} 未达标站点 Stations below the rule`),
    below.length ? table([
      { label: "站点", en: "Terminal", value: (r) => r.terminal_id, render: (r) => el("a", { href: `#/terminal/${r.terminal_id}` }, r.terminal_id) },
      { label: "乡镇", en: "Township", value: (r) => unitOf.get(r.village_code) || "" },
      { label: "村（社区）", en: "Village", value: (r) => r.village_name },
      { label: "场次", en: "Sessions", value: (r) => r.sessions, num: true, cls: (r) => r.sessions < months.rule_sessions ? "below" : "" },
      { label: "学时", en: "Hours", value: (r) => r.hours, num: true, cls: (r) => r.hours < months.rule_hours ? "below" : "" },
      { label: "参学人次", en: "Attendances", value: (r) => r.attendances, num: true },
    ], below, { id: "below-table", sortBy: 4 }) : empty("所有站点都达标。", "Every station meets the rule."));

  root.append(el("h3", {}, "各乡镇 Townships"), table([
    { label: "乡镇", en: "Township", value: (r) => r.name },
    { label: "党员", en: "Members", value: (r) => r.members, num: true },
    { label: "参学", en: "Trained", value: (r) => r.trained, num: true },
    { label: "受训率", en: "Rate", value: (r) => r.rate, render: (r) => percent(r.rate), num: true },
  ], units, { id: "units-table" }));
  root.append(el("h3", {}, "各村（社区） Villages"), table([
    { label: "乡镇", en: "Township", value: (r) => unitOf.get(r.code) || "" },
    { label: "村（社区）", en: "Village", value: (r) => r.name },
    { label: "党员", en: "Members", value: (r) => r.members, num: true },
    { label: "参学", en: "Trained", value: (r) => r.trained, num: true },
    { label: "受训率", en: "Rate", value: (r) => r.rate, render: (r) => percent(r.rate), num: true },
  ], vrows, { id: "villages-table", sortBy: 4 }));
}
