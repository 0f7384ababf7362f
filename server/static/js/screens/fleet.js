// 终端: every terminal point by state (online, late, stopped reporting for days, never
// enrolled, revoked), filtered and sorted; clock, disk, version, backlog; enrollment
// codes for one or many, printed as slips.
import { api, canWrite } from "../api.js";
import { fleet, forget } from "../data.js";
import { bytes, dateTime, ago, skew } from "../fmt.js";
import { el, h2, table, empty, notice, confirmDialog, busy, button } from "../ui.js";
import { stateOf, daysSilent, STATES } from "../state.js";
import { setBanner } from "../app.js";

const SKEW_LIMIT = 300; // seconds; beyond this a terminal's clock needs looking at
const LOW_DISK = 2 * 1024 ** 3;

export function diskBanner(f) {
  if (f.server_disk_full) setBanner("服务器磁盘已满：新上传和新记录可能被拒绝，请联系技术人员清理空间。", `Server disk full (${bytes(f.server_free_bytes)} free)`);
  else setBanner("");
}

export async function render(root) {
  forget("/api/v1/admin/fleet");
  const f = await fleet();
  diskBanner(f);
  const counts = {};
  for (const t of f.terminals) { const s = stateOf(t); counts[s] = (counts[s] || 0) + 1; }
  const filter = { state: "", text: "" };
  const chips = el("div", { class: "chips", id: "fleet-states" });
  const chip = (key, label) => {
    const b = button(label, () => { filter.state = key; for (const c of chips.children) c.classList.toggle("active", c === b); draw(); });
    b.dataset.state = key;
    return b;
  };
  chips.append(chip("", `全部 All ${f.terminals.length}`), ...Object.entries(STATES).sort((a, b) => a[1].rank - b[1].rank)
    .map(([k, s]) => chip(k, `${s.zh} ${counts[k] || 0}`)));
  chips.firstChild.classList.add("active");
  const search = el("input", { type: "search", id: "fleet-filter", placeholder: "村名、乡镇、终端编号" });
  search.addEventListener("input", () => { filter.text = search.value.trim(); draw(); });
  const holder = el("div");
  const selected = new Set();
  const slips = button("为所选终端生成登记码 Codes for the selected…", () => busy(slips, () => makeCodes([...selected])), "primary");
  slips.id = "make-codes";
  root.append(h2("终端站点", "Terminal points"),
    el("p", { id: "fleet-summary" }, `在线 ${f.online} / 共 ${f.total}`, el("small", {}, ` online ${f.online} / ${f.total}`)),
    chips, el("div", { class: "filters" }, el("label", {}, "查找 Find", search), canWrite() ? slips : ""),
    f.unenrolled && f.unenrolled.length ? el("p", { class: "hint", id: "unenrolled" }, `网络上发现未登记的终端 Unenrolled boxes heard: ${
      f.unenrolled.map((b) => `${b.village || "?"} @ ${b.addresses.join(", ")}`).join("；")}`) : "",
    holder);
  function draw() {
    const q = filter.text;
    const rows = f.terminals.filter((t) => (!filter.state || stateOf(t) === filter.state) &&
      (!q || t.id.includes(q) || t.village_name.includes(q) || t.unit_name.includes(q)));
    holder.replaceChildren(rows.length ? table([
      ...(canWrite() ? [{ label: "选", render: (t) => el("input", { type: "checkbox", "aria-label": t.id, checked: selected.has(t.id),
        onchange: (ev) => { if (ev.target.checked) selected.add(t.id); else selected.delete(t.id); } }) }] : []),
      { label: "终端", en: "Terminal", value: (t) => t.id, render: (t) => el("a", { href: `#/terminal/${t.id}` }, t.id) },
      { label: "村（社区）", en: "Village", value: (t) => t.village_name },
      { label: "乡镇", en: "Township", value: (t) => t.unit_name },
      { label: "状态", en: "State", value: (t) => STATES[stateOf(t)].rank * 1e6 - (daysSilent(t) || 0),
        render: (t) => {
          const s = stateOf(t);
          if (s === "offline_days") return `${STATES[s].zh} ${daysSilent(t)} 天`;
          if (s === "never" && t.enrolled) return "已登记，从未上报";
          return STATES[s].zh;
        },
        cls: (t) => STATES[stateOf(t)].cls },
      { label: "最后在线", en: "Last seen", value: (t) => t.last_seen || "", render: (t) => t.last_seen ? `${dateTime(t.last_seen)}（${ago(t.last_seen)}）` : "从未" },
      { label: "时钟偏差", en: "Clock", value: (t) => Math.abs(t.clock_skew_seconds || 0), num: true,
        render: (t) => skew(t.clock_skew_seconds),
        cls: (t) => t.clock_problem || Math.abs(t.clock_skew_seconds || 0) > SKEW_LIMIT ? "warn" : "" },
      { label: "磁盘剩余", en: "Disk free", value: (t) => t.disk_free, render: (t) => bytes(t.disk_free), num: true,
        cls: (t) => t.disk_free != null && t.disk_free < LOW_DISK ? "warn" : "" },
      { label: "版本", en: "Version", value: (t) => t.software_version },
      { label: "待上报", en: "Backlog", value: (t) => t.outbox_backlog, num: true, cls: (t) => (t.outbox_backlog || 0) > 20 ? "warn" : "" },
      { label: "已就绪", en: "Ready", value: (t) => t.ready_items, num: true },
    ], rows, { id: "fleet-table", sortBy: canWrite() ? 4 : 3, rowClass: (t) => STATES[stateOf(t)].cls })
      : empty("没有符合条件的终端。", "No terminal matches."));
  }
  draw();
}

export async function makeCodes(ids) {
  if (!ids.length) return notice("请先勾选终端。", "Tick terminals first.", "error");
  const ok = await confirmDialog({ title: `为 ${ids.length} 个终端生成登记码？`, confirm: "生成 Make codes", danger: false,
    body: [el("p", {}, "每个终端的旧登记码（如果还没用过）将作废；已登记的终端用新码重新登记后，旧的登记失效。"),
      el("p", { class: "en" }, "An unused older code of each terminal stops working.")] });
  if (!ok) return;
  const f = await fleet();
  const byId = new Map(f.terminals.map((t) => [t.id, t]));
  const made = [];
  for (const id of ids) {
    const c = await api(`/api/v1/admin/terminals/${id}/enrollment`, { method: "POST", json: {} });
    const t = byId.get(id) || {};
    made.push({ terminal_id: id, code: c.code, expires_at: c.expires_at, village: t.village_name || "", unit: t.unit_name || "" });
  }
  sessionStorage.setItem("yj-slips", JSON.stringify(made));
  location.hash = "#/slips";
}
