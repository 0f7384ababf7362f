// Small DOM helpers shared by the screens: elements, notices, the confirm dialog, and
// sortable tables that turn into cards on a phone.

export const $ = (sel, root = document) => root.querySelector(sel);

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k in node && typeof v !== "string") node[k] = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// A heading: Chinese, with the English smaller.
export const h2 = (zh, en) => el("h2", {}, zh, " ", el("small", {}, en));

export function notice(zh, en = "", kind = "ok") {
  const n = $("#notice");
  n.replaceChildren(...(zh ? [el("span", {}, zh), en ? el("small", { class: "en" }, en) : ""] : []));
  n.className = kind;
  n.hidden = !zh;
  if (zh) n.scrollIntoView({ block: "nearest" });
}
export function showError(e, prefix = "") {
  const zh = e && e.zh ? e.zh : String(e && e.message ? e.message : e);
  notice(prefix + zh, e && e.en ? e.en : "", "error");
}
export const clearNotice = () => notice("");

// An inline error box inside a screen (e.g. a failed lookup), Chinese then English.
export function errorBox(e, title) {
  return el("div", { class: "failure", role: "alert" },
    el("strong", {}, title), el("p", {}, e.zh || String(e.message || e)),
    e.en ? el("p", { class: "en" }, e.en) : "");
}

export const empty = (zh, en) => el("p", { class: "empty" }, zh, " ", el("small", {}, en));

// Ask before doing something that cannot be undone. `body` says what it removes.
export function confirmDialog({ title, body = [], confirm = "确定", danger = true }) {
  const dialog = $("#confirm");
  const ok = el("button", { class: danger ? "danger" : "primary", value: "ok", type: "submit" }, confirm);
  const cancel = el("button", { value: "cancel", type: "submit", class: "secondary" }, "取消 Cancel");
  dialog.replaceChildren(el("form", { method: "dialog" },
    el("h3", {}, title), el("div", { class: "dialog-body" }, body), el("div", { class: "buttons" }, cancel, ok)));
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    cancel.focus();
  });
}

// A sortable table. columns: [{label, en, value(row), render?(row), cls?(row), num?}].
export function table(columns, rows, { id, sortBy = null, rowClass = null, limit = 0 } = {}) {
  const state = { key: sortBy, dir: 1 };
  const tbody = el("tbody");
  const head = el("tr");
  const wrap = el("table", { class: "cards", id });
  function draw() {
    let list = rows;
    if (state.key != null) {
      const col = columns[state.key];
      list = [...rows].sort((a, b) => {
        const x = col.value(a), y = col.value(b);
        return (x == null ? 1 : y == null ? -1 : x < y ? -1 : x > y ? 1 : 0) * state.dir;
      });
    }
    if (limit) list = list.slice(0, limit);
    tbody.replaceChildren(...list.map((r) => el("tr", { class: rowClass ? rowClass(r) : null },
      columns.map((c) => el("td", { "data-label": c.label, class: [c.num ? "num" : "", c.cls ? c.cls(r) : ""].join(" ").trim() || null },
        c.render ? c.render(r) : (c.value(r) ?? "—"))))));
    for (const [i, th] of [...head.children].entries()) {
      th.setAttribute("aria-sort", state.key === i ? (state.dir > 0 ? "ascending" : "descending") : "none");
    }
  }
  columns.forEach((c, i) => {
    const th = el("th", { class: c.num ? "num" : null }, c.label, c.en ? el("small", {}, " " + c.en) : "");
    if (c.value && c.sortable !== false) {
      th.classList.add("sortable");
      th.tabIndex = 0;
      const sort = () => { state.dir = state.key === i ? -state.dir : 1; state.key = i; draw(); };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (ev) => { if (ev.key === "Enter") sort(); });
    }
    head.append(th);
  });
  wrap.append(el("thead", {}, head), tbody);
  draw();
  return wrap;
}

export function button(label, onclick, cls = "") {
  return el("button", { type: "button", class: cls || null, onclick }, label);
}

// Run an async action from a button: disable it meanwhile, show errors.
export async function busy(btn, fn) {
  btn.disabled = true;
  try { return await fn(); } catch (e) { showError(e); return undefined; } finally { btn.disabled = false; }
}

// A notice to show after the next screen change (route() clears the old one).
let pending = null;
export function flash(zh, en = "") { pending = [zh, en]; }
export function takeFlash() { const p = pending; pending = null; return p; }
