// The console's entry: log in, the menu, and the screens behind "#/name/param".
import { api, setSession, setUnauthorizedHandler, canWrite, currentSession, countyView, setCountyView } from "./api.js";
import { setTimeZone } from "./fmt.js";
import { $, el, button, showError, clearNotice, notice, takeFlash } from "./ui.js";
import { forget, fleet } from "./data.js";

const SCREENS = {
  library: () => import("./screens/library.js"),
  upload: () => import("./screens/upload.js"),
  distribution: () => import("./screens/distribution.js"),
  sessions: () => import("./screens/sessions.js"),
  readiness: () => import("./screens/readiness.js"),
  fleet: () => import("./screens/fleet.js"),
  terminal: () => import("./screens/terminal.js"),
  slips: () => import("./screens/slips.js"),
  reports: () => import("./screens/reports.js"),
  member: () => import("./screens/member.js"),
  flagged: () => import("./screens/flagged.js"),
  roster: () => import("./screens/roster.js"),
  province: () => import("./screens/province.js"),
};
let generation = 0;
// Screens that list a county's terminals, villages or sessions one by one: the province's
// account opens them for one county at a time (20,000 terminals in one table help no one,
// and take seconds to list); its own figures are on 全省.
const PER_COUNTY = new Set(["sessions", "readiness", "fleet", "terminal", "slips", "reports"]);

async function route() {
  if (!currentSession().role) return;
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const screen = SCREENS[name] ? name : "library";
  const nav = screen === "terminal" || screen === "slips" ? "fleet" : screen;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.screen === nav);
  clearNotice();
  const mine = ++generation;
  const view = $("#view");
  view.replaceChildren(el("p", { class: "loading" }, "正在加载… Loading"));
  view.dataset.screen = screen;
  try {
    const node = el("section", { class: "screen", id: `screen-${screen}` });
    if (PER_COUNTY.has(screen) && !$("#county-view-box").hidden && !countyView()) {
      chooseCounty(node);
    } else {
      const mod = await SCREENS[screen]();
      await mod.render(node, rest.map(decodeURIComponent));
    }
    if (mine === generation) view.replaceChildren(node);
    const f = takeFlash();
    if (f) notice(...f);
  } catch (e) {
    if (mine === generation) { view.replaceChildren(); showError(e); }
  }
}

function showLogin() {
  setSession(null);
  $("#login-form").hidden = false;
  $("nav").hidden = true;
  $("#who").hidden = true;
  $("#view").replaceChildren();
}
setUnauthorizedHandler(showLogin);

async function signedIn(session) {
  setSession(session);
  $("#login-form").hidden = true;
  $("nav").hidden = false;
  $("#who").hidden = false;
  const where = session.county ? ` · ${session.county_name || session.county}` : session.counties > 1 ? " · 全省" : "";
  $("#who-name").textContent = `${session.username}（${session.role === "admin" ? "管理员 admin" : "只读 viewer"}${where}）`;
  document.body.classList.toggle("viewer", !canWrite());
  for (const a of document.querySelectorAll("nav a[data-write]")) a.hidden = !canWrite();
  // The province's work: its report.
  for (const a of document.querySelectorAll("nav a[data-province]")) {
    a.hidden = Boolean(session.county) || (a.dataset.province === "many" && session.counties < 2) || (a.dataset.write !== undefined && !canWrite());
  }
  await countyPicker(session);
  // The server's own disk matters on every screen: say so at once if it is full.
  import("./screens/fleet.js").then(async (m) => m.diskBanner(await fleet())).catch(() => null);
  await route();
}

// The province's account looks at the whole province or at one county (its screens then
// read that county alone, as its own account would see them).
async function countyPicker(session) {
  const box = $("#county-view-box"), pick = $("#county-view");
  box.hidden = Boolean(session.county) || session.counties < 2;
  if (box.hidden) return setCountyView("");
  const counties = await api("/api/v1/admin/counties").catch(() => []);
  pick.replaceChildren(el("option", { value: "" }, "全省 Whole province"),
    ...counties.map((c) => el("option", { value: c.code }, c.name ? `${c.name}（${c.code}）` : c.code)));
  if (!counties.some((c) => c.code === countyView())) setCountyView("");
  pick.value = countyView();
}
$("#county-view").addEventListener("change", (ev) => lookAt(ev.target.value));

function chooseCounty(node) {
  const counties = [...$("#county-view").options].filter((o) => o.value);
  node.append(el("div", { class: "rule", id: "choose-county" },
    el("p", {}, `全省共 ${counties.length} 个县，本页按县查看：请选择一个县（各县汇总见“全省”）。`),
    el("p", { class: "en" }, "This page shows one county at a time: pick one (the province's figures are on 全省 Province)."),
    el("p", { class: "actions" }, ...counties.map((o) => button(o.textContent, () => lookAt(o.value))))));
}

// Look at county `code` ("" for the whole province) and show the current screen again.
export function lookAt(code, hash) {
  setCountyView(code);
  $("#county-view").value = code;
  forget();
  if (hash && location.hash !== hash) location.hash = hash; else route();
}

// A banner the admin must see on every screen (e.g. the server's disk is full).
export function setBanner(zh, en) {
  const b = $("#banner");
  b.replaceChildren(...(zh ? [el("strong", {}, zh), " ", el("small", {}, en)] : []));
  b.hidden = !zh;
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const session = await api("/api/v1/auth/login", {
      method: "POST", json: { username: $("#login-user").value.trim(), password: $("#login-password").value },
    });
    $("#login-password").value = "";
    await signedIn(session);
  } catch (e) { showError(e, "登录失败："); }
});
$("#logout").addEventListener("click", async () => {
  await api("/api/v1/auth/logout", { method: "POST" }).catch(() => null);
  forget();
  showLogin();
  notice("已退出 Logged out");
});
window.addEventListener("hashchange", route);

(async () => {
  // The county's time zone comes from the server when it names one.
  await api("/api/v1/server").then((info) => setTimeZone(info.time_zone || "Asia/Shanghai")).catch(() => null);
  try {
    const r = await fetch("/api/v1/auth/session");
    if (r.ok) await signedIn(await r.json()); else showLogin();
  } catch { showLogin(); }
})();
