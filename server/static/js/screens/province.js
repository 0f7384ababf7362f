// 全省: per county, terminal points online, coverage over the period and readiness for the
// sessions ahead, the province's total first; coverage drawn as bars; CSV export; a county
// still known by its code alone can be given its name here.
import { api } from "../api.js";
import { today, percent } from "../fmt.js";
import { el, h2, table, notice, button, busy } from "../ui.js";
import { lookAt } from "../app.js";

const charts = [];

export async function render(root, [fromArg, toArg]) {
  const year = today().slice(0, 4);
  const from = el("input", { id: "province-from", value: fromArg || `${year}-01-01`, inputmode: "numeric" });
  const to = el("input", { id: "province-to", value: toArg || today(), inputmode: "numeric" });
  const form = el("form", { id: "province-form", class: "filters" },
    el("label", {}, "从 From", from), el("label", {}, "到 To", to),
    el("button", { type: "submit", class: "primary" }, "查询 Show"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!/^\d{4}-\d{2}-\d{2}$/.test(from.value) || !/^\d{4}-\d{2}-\d{2}$/.test(to.value)) return notice("日期应写成 2026-01-31。", "Dates as YYYY-MM-DD.", "error");
    location.hash = `#/province/${from.value}/${to.value}`;
  });
  const q = new URLSearchParams({ from: from.value, to: to.value });
  const report = await api(`/api/v1/admin/province?${q}`);
  const t = report.total;
  const csv = el("a", { class: "button", href: `/api/v1/admin/province?${new URLSearchParams({ from: from.value, to: to.value, format: "csv" })}`, download: "" }, "各县汇总 CSV");

  root.append(h2("全省", "Province"), form,
    el("div", { class: "rule", id: "province-rule" },
      el("p", {}, `统计期间：${from.value} 至 ${to.value}（北京时间）；就绪：今后 ${report.horizon_days} 天内的场次，站点已备齐全部内容。`),
      el("p", { class: "en" }, "Coverage over the period; readiness for the sessions of the days ahead.")),
    el("div", { class: "figures", id: "province-figures" },
      el("p", { class: "big" }, `全省受训率 ${percent(t.coverage_rate)}`, el("small", {}, `（${t.trained} / ${t.members} 人）`)),
      el("p", { class: "big" }, `在线站点 ${t.online} / ${t.terminals}`),
      el("p", { class: "big" }, `就绪率 ${t.due ? percent(t.readiness_rate) : "—"}`, el("small", {}, `（${t.ready} / ${t.due}）`))),
    el("div", { class: "exports" }, "导出 Export：", csv));

  for (const c of charts.splice(0)) c.destroy();
  const box = el("div", { class: "chart" }, el("canvas", { id: "counties-chart", "aria-label": "各县受训率和就绪率" }));
  root.append(el("h3", {}, "各县受训率、就绪率 Coverage and readiness by county"), box);
  const Chart = window.Chart;
  if (Chart) {
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.animation = false;
    charts.push(new Chart(box.firstChild, {
      type: "bar",
      data: { labels: report.counties.map((c) => c.name), datasets: [
        { label: "受训率 %", data: report.counties.map((c) => +(c.coverage_rate * 100).toFixed(1)), backgroundColor: "#a4161a" },
        { label: "就绪率 %", data: report.counties.map((c) => +(c.readiness_rate * 100).toFixed(1)), backgroundColor: "#1f5fa8" },
      ] },
      options: { maintainAspectRatio: false, indexAxis: report.counties.length > 8 ? "y" : "x", scales: { x: { beginAtZero: true, suggestedMax: 100 }, y: { beginAtZero: true, suggestedMax: 100 } } },
    }));
  }

  const rename = (c) => button("命名 Name", (ev) => busy(ev.currentTarget, async () => {
    const name = (prompt(`县代码 ${c.code} 的名称（如 清徐县）`, c.name === c.code ? "" : c.name) || "").trim();
    if (!name) return;
    await api(`/api/v1/admin/counties/${c.code}`, { method: "PUT", json: { name } });
    notice(`已命名：${c.code} ${name}`, "County named.");
    location.hash = `#/province/${from.value}/${to.value}`;
    dispatchEvent(new HashChangeEvent("hashchange"));
  }), "small");
  root.append(el("h3", {}, "各县 Counties"), table([
    { label: "县", en: "County", value: (c) => c.name, render: (c) => el("span", {}, c.name, c.name === c.code ? el("small", {}, "（未命名）") : "") },
    { label: "代码", en: "Code", value: (c) => c.code },
    { label: "终端站点", en: "Terminals", value: (c) => c.terminals, num: true },
    { label: "在线", en: "Online", value: (c) => c.online, num: true, cls: (c) => c.terminals && c.online === 0 ? "below" : "" },
    { label: "党员", en: "Members", value: (c) => c.members, num: true },
    { label: "参学", en: "Trained", value: (c) => c.trained, num: true },
    { label: "受训率", en: "Coverage", value: (c) => c.coverage_rate, render: (c) => percent(c.coverage_rate), num: true },
    { label: "近期场次", en: "Sessions", value: (c) => c.sessions_ahead, num: true },
    { label: "已就绪", en: "Ready", value: (c) => c.ready, render: (c) => `${c.ready} / ${c.due}`, num: true, cls: (c) => c.due && c.ready < c.due ? "below" : "" },
    { label: "", en: "", value: null, render: (c) => el("span", { class: "actions" },
      button("查看 View", () => lookAt(c.code, "#/reports"), "small"), " ", rename(c)) },
  ], report.counties, { id: "counties-table" }));
}
