// 就绪: for each upcoming session, grouped by township, which terminals are ready, and
// for the others the missing items, bytes left, when last seen and what to do.
import { api } from "../api.js";
import { contents, fleet } from "../data.js";
import { bytes, dateTime, ago } from "../fmt.js";
import { el, h2, empty, table } from "../ui.js";
import { stateOf, STATES } from "../state.js";

function advice(t, left) {
  const st = stateOf(t);
  if (st === "revoked") return "终端已吊销：如需恢复，发新登记码重新登记";
  if (st === "never") return "终端从未上线：请站点管理员安装开机，并用登记码登记";
  if (st === "offline_days") return "已多天未上报：电话联系站点管理员，检查电源和网络";
  if (t.disk_free != null && t.disk_free < left) return "终端磁盘不足：请站点管理员清理空间";
  if (st === "late") return "刚断线：稍后再看，或联系站点管理员检查网络";
  return "正在下载：保持开机联网即可";
}

export async function render(root) {
  const [sessions, f, list] = await Promise.all([api("/api/v1/admin/readiness"), fleet(), contents()]);
  const terms = new Map(f.terminals.map((t) => [t.id, t]));
  const size = new Map(list.map((c) => [c.sha256, c]));
  root.append(h2("场次就绪情况", "Readiness"),
    el("p", { class: "hint" }, "按乡镇列出每场所需内容是否已下载到终端。 Which terminals hold every item of each upcoming session."));
  if (!sessions.length) { root.append(empty("没有即将举行的场次。", "No upcoming sessions.")); return; }
  for (const s of sessions) {
    const byUnit = new Map();
    for (const r of s.terminals) {
      const t = terms.get(r.terminal_id) || { id: r.terminal_id, unit_name: "?", village_name: r.village_name };
      if (!byUnit.has(t.unit_name)) byUnit.set(t.unit_name, []);
      byUnit.get(t.unit_name).push({ r, t });
    }
    const pct = s.total ? Math.round((s.ready / s.total) * 100) : 0;
    const block = el("details", { class: "session-readiness", open: sessions.length === 1 },
      el("summary", {}, el("strong", {}, `${dateTime(s.starts_at)} ${s.title}`),
        ` 就绪 ${s.ready}/${s.total}（${pct}%）`, el("meter", { min: 0, max: s.total || 1, value: s.ready })));
    for (const [unit, rows] of [...byUnit.entries()].sort((a, b) => a[1].filter((x) => x.r.ready).length / a[1].length - b[1].filter((x) => x.r.ready).length / b[1].length)) {
      const notReady = rows.filter((x) => !x.r.ready);
      const ready = rows.filter((x) => x.r.ready);
      const unitBlock = el("div", { class: "unit-readiness" },
        el("h4", {}, `${unit}：就绪 ${ready.length}/${rows.length}`),
        ready.length ? el("details", { class: "ready-list" }, el("summary", {}, `已就绪的 ${ready.length} 个终端 Ready`),
          el("p", {}, ready.map((x) => `${x.r.village_name}（${x.t.id}）`).join("、"))) : "");
      if (notReady.length) {
        unitBlock.append(table([
          { label: "村（社区）", en: "Village", value: (x) => x.r.village_name },
          { label: "终端", en: "Terminal", value: (x) => x.t.id, render: (x) => el("a", { href: `#/terminal/${x.t.id}` }, x.t.id) },
          { label: "缺少", en: "Missing", value: (x) => x.r.missing.length, render: (x) => x.r.missing.map((h) => size.get(h)?.title || h.slice(0, 8)).join("、") },
          { label: "待下载", en: "Bytes left", value: (x) => left(x), render: (x) => bytes(left(x)), num: true },
          { label: "最后在线", en: "Last seen", value: (x) => x.t.last_seen, render: (x) => x.t.last_seen ? `${dateTime(x.t.last_seen)}（${ago(x.t.last_seen)}）` : "从未 never" },
          { label: "状态", en: "State", value: (x) => STATES[stateOf(x.t)].rank, render: (x) => STATES[stateOf(x.t)].zh, cls: (x) => STATES[stateOf(x.t)].cls },
          { label: "怎么办", en: "What to do", value: (x) => advice(x.t, left(x)) },
        ], notReady, { sortBy: 5 }));
      } else unitBlock.append(el("p", { class: "ok" }, "全部就绪 All ready"));
      block.append(unitBlock);
    }
    root.append(block);
  }
  function left(x) { return x.r.missing.reduce((n, h) => n + (size.get(h)?.size || 0), 0); }
}
