// A checkbox tree of the county (township → village → terminal) and what a selection
// means: the fewest scopes that cover it (the county, townships, villages, terminals).
import { el } from "./ui.js";
import { everywhere } from "./api.js";

export function countyPicker(tree, { terminals = true, id = "county-tree", onchange = () => {} } = {}) {
  const all = el("input", { type: "checkbox", id: `${id}-all` });
  const root = el("div", { class: "tree", id });
  const boxes = [];
  function refresh() {
    for (const u of boxes) {
      for (const v of u.villages) {
        if (v.terminals.length) {
          const n = v.terminals.filter((t) => t.box.checked).length;
          v.box.checked = n === v.terminals.length;
          v.box.indeterminate = n > 0 && n < v.terminals.length;
        }
      }
      const n = u.villages.filter((v) => v.box.checked).length;
      const some = u.villages.some((v) => v.box.checked || v.box.indeterminate);
      u.box.checked = n === u.villages.length && n > 0;
      u.box.indeterminate = some && !u.box.checked;
      u.count.textContent = some ? `已选 ${u.villages.filter((v) => v.box.checked).length}/${u.villages.length} 村` : `${u.villages.length} 村`;
    }
    all.checked = boxes.every((u) => u.box.checked);
    all.indeterminate = !all.checked && boxes.some((u) => u.box.checked || u.box.indeterminate);
    onchange();
  }
  const set = (list, on) => list.forEach((b) => { b.checked = on; b.indeterminate = false; });
  for (const unit of tree) {
    const u = { code: unit.code, name: unit.name, box: el("input", { type: "checkbox", "aria-label": unit.name }), villages: [], count: el("small") };
    const list = el("ul");
    for (const village of unit.villages) {
      const v = { code: village.code, name: village.name, box: el("input", { type: "checkbox", "aria-label": village.name }), terminals: [] };
      const tlist = el("ul", { class: "terminals" });
      if (terminals) {
        for (const t of village.terminals) {
          const tb = { id: t.id, box: el("input", { type: "checkbox", "aria-label": t.id }) };
          tb.box.addEventListener("change", refresh);
          v.terminals.push(tb);
          tlist.append(el("li", {}, el("label", {}, tb.box, ` ${t.id}`)));
        }
      }
      v.box.addEventListener("change", () => { set(v.terminals.map((t) => t.box), v.box.checked); refresh(); });
      u.villages.push(v);
      list.append(el("li", {}, el("label", {}, v.box, ` ${village.name}`), v.terminals.length > 1 ? tlist : ""));
    }
    u.box.addEventListener("change", () => {
      for (const v of u.villages) { v.box.checked = u.box.checked; set(v.terminals.map((t) => t.box), u.box.checked); }
      refresh();
    });
    boxes.push(u);
    root.append(el("details", { class: "unit" },
      el("summary", {}, el("label", { onclick: (ev) => ev.stopPropagation() }, u.box, ` ${unit.name} `), u.count), list));
  }
  all.addEventListener("change", () => {
    for (const u of boxes) { u.box.checked = all.checked; for (const v of u.villages) { v.box.checked = all.checked; set(v.terminals.map((t) => t.box), all.checked); } }
    refresh();
  });
  refresh();
  const widget = el("fieldset", { class: "picker" }, el("legend", {}, "选择范围 Choose where"),
    el("label", { class: "all" }, all, ` ${everywhere().join(" ")}`), root);
  widget.selection = () => {
    if (all.checked) return [{ scope: "county", target: "", name: everywhere()[0] }];
    const out = [];
    for (const u of boxes) {
      if (u.box.checked) { out.push({ scope: "unit", target: u.code, name: u.name }); continue; }
      for (const v of u.villages) {
        if (v.box.checked) out.push({ scope: "village", target: v.code, name: `${u.name} ${v.name}` });
        else for (const t of v.terminals) if (t.box.checked) out.push({ scope: "terminal", target: t.id, name: `${v.name} ${t.id}` });
      }
    }
    return out;
  };
  // Village codes covered (sessions are held per village).
  widget.villageCodes = () => boxes.flatMap((u) => u.villages.filter((v) => v.box.checked || v.box.indeterminate).map((v) => v.code));
  widget.clear = () => { all.checked = false; all.dispatchEvent(new Event("change")); };
  widget.check = (codes) => {
    for (const u of boxes) for (const v of u.villages) if (codes.includes(v.code)) { v.box.checked = true; set(v.terminals.map((t) => t.box), true); }
    refresh();
  };
  return widget;
}
