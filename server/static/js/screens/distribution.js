// 分发: assign contents to the county, townships, villages or terminals picked from a
// tree, with a "needed by" date; withdraw an assignment after saying what it removes.
import { api, canWrite, currentSession } from "../api.js";
import { contents, countyTree, fleet, forget } from "../data.js";
import { KINDS, countyToDate, day, dateTime, today } from "../fmt.js";
import { el, h2, table, empty, notice, showError, confirmDialog, busy, button } from "../ui.js";
import { countyPicker } from "../tree.js";

const SCOPES = { county: "全县", unit: "乡镇", village: "村（社区）", terminal: "终端" };

export async function render(root) {
  const [list, assignments, tree, f] = await Promise.all([contents(), api("/api/v1/admin/assignments"), countyTree(), fleet()]);
  const names = new Map();
  const reach = new Map();
  for (const u of tree) {
    names.set(`unit:${u.code}`, u.name);
    reach.set(`unit:${u.code}`, u.villages.reduce((n, v) => n + v.terminals.length, 0));
    for (const v of u.villages) {
      names.set(`village:${v.code}`, `${u.name} ${v.name}`);
      reach.set(`village:${v.code}`, v.terminals.length);
      for (const t of v.terminals) { names.set(`terminal:${t.id}`, `${v.name} ${t.id}`); reach.set(`terminal:${t.id}`, 1); }
    }
  }
  reach.set("county:", f.terminals.length);
  const mine = currentSession().county;  // a county's account: "county" is its own county
  // every terminal of the server: the province's, unless this server holds one county
  names.set("county:", mine || currentSession().counties > 1 ? "全省" : "全县");
  if (mine) { names.set(`county:${mine}`, "全县"); reach.set(`county:${mine}`, f.terminals.length); }
  root.append(h2("分发内容", "Distribution"));

  if (canWrite()) {
    const boxes = el("div", { class: "checklist", id: "assign-contents" }, list.length ? list.map((c) =>
      el("label", {}, el("input", { type: "checkbox", value: c.id }), ` ${c.title} `, el("small", {}, KINDS[c.kind]))) : empty("内容库是空的，请先上传。", "No contents yet."));
    const picker = countyPicker(tree, { id: "assign-tree" });
    const needed = el("input", { id: "assign-needed", placeholder: "2026-12-31", pattern: "\\d{4}-\\d{2}-\\d{2}", inputmode: "numeric" });
    const go = el("button", { type: "submit", class: "primary" }, "分发 Assign");
    const form = el("form", { id: "assign-form" },
      el("fieldset", {}, el("legend", {}, "内容 Contents"), boxes), picker,
      el("label", {}, "最迟到达日期（可不填） Needed by, YYYY-MM-DD", needed), go);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      busy(go, async () => {
        const ids = [...boxes.querySelectorAll("input:checked")].map((b) => b.value);
        const where = picker.selection();
        if (!ids.length) return notice("请至少选一个内容。", "Choose at least one content.", "error");
        if (!where.length) return notice("请在县、乡镇、村、终端中至少勾选一处。", "Choose where.", "error");
        let neededBy = null;
        if (needed.value.trim()) {
          const d = countyToDate(needed.value, "23:59");
          if (!d) return notice("日期格式应为 2026-12-31。", "Date as YYYY-MM-DD.", "error");
          if (needed.value.trim() < today()) return notice("最迟到达日期已经过去，请选今天或以后的日期。", "The date is in the past.", "error");
          neededBy = d.toISOString();
        }
        for (const id of ids) for (const w of where) {
          await api("/api/v1/admin/assignments", { method: "POST", json: { content_id: id, scope: w.scope, target: w.target, needed_by: neededBy } });
        }
        forget("/api/v1/admin/contents/reach");
        notice(`已分发 ${ids.length} 个内容到：${where.map((w) => w.name).join("、")}`, "Assigned");
        await rerender(root);
      });
    });
    root.append(form);
  }

  root.append(el("h3", {}, "分发记录 Assignments"), assignments.length ? table([
    { label: "内容", en: "Content", value: (a) => a.title },
    { label: "范围", en: "Where", value: (a) => a.scope === "county" ? names.get(`county:${a.target}`) || `县 ${a.target}` : `${SCOPES[a.scope]} ${names.get(`${a.scope}:${a.target}`) || a.target}` },
    { label: "终端数", en: "Terminals", value: (a) => reach.get(`${a.scope}:${a.target}`) ?? 0, num: true },
    { label: "最迟到达", en: "Needed by", value: (a) => a.needed_by, render: (a) => day(a.needed_by) },
    { label: "分发时间", en: "Made", value: (a) => a.created_at, render: (a) => dateTime(a.created_at) },
    ...(canWrite() ? [{ label: "", render: (a) => {
      // A county's account withdraws what it assigned in its county, not the province's
      // assignments to every county.
      const mine = currentSession().county;
      if (mine && a.scope === "county" && a.target !== mine) return el("small", {}, "省级分发 By the province");
      const b = button("撤回 Withdraw…", () => busy(b, async () => {
        const where = names.get(`${a.scope}:${a.target}`) || a.target;
        const n = reach.get(`${a.scope}:${a.target}`) ?? 0;
        const ok = await confirmDialog({ title: `撤回「${a.title}」在${where}的分发？`, confirm: "撤回 Withdraw",
          body: [el("p", {}, `「${a.title}」将从 ${where} 的 ${n} 个终端的下载清单中去掉；没有其他分发或场次需要它的终端，会在下次同步时删除该文件。`),
            el("p", { class: "en" }, `Removes it from the list of ${n} terminals; those that need it for nothing else delete the file.`)] });
        if (!ok) return;
        await api(`/api/v1/admin/assignments/${a.id}`, { method: "DELETE" });
        forget("/api/v1/admin/contents/reach");
        notice(`已撤回：${a.title}（${where}）`, "Withdrawn");
        await rerender(root);
      }), "danger withdraw");
      return b;
    } }] : []),
  ], assignments, { id: "assignments-table" }) : empty("还没有分发记录。", "No assignments yet."));
}

async function rerender(root) {
  const kept = document.querySelector("#notice").cloneNode(true);
  const fresh = el("section", { class: "screen", id: root.id });
  await render(fresh, []);
  root.replaceWith(fresh);
  document.querySelector("#notice").replaceWith(kept);
}
