// The county console: a thin page over the JSON API. Times are shown in county time.
"use strict";

const TZ = "Asia/Shanghai";
const KINDS = { feature_film: "专题片", lecture: "党课/讲座", farming_technique: "农业实用技术" };
const SCOPES = { county: "全县", unit: "乡镇", village: "村（社区）", terminal: "终端" };
const CHUNK = 8 * 1024 * 1024;
const state = { contents: [], units: [], villages: [], terminals: [], csrf: null, role: null };

const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
};

function notice(text, isError = false) {
  const n = $("#notice");
  n.textContent = text;
  n.className = isError ? "error" : "";
  n.hidden = !text;
}

function withCsrf(headers = {}) {
  return state.csrf ? { ...headers, "X-CSRF-Token": state.csrf } : headers;
}

async function api(path, options = {}) {
  const method = (options.method || "GET").toUpperCase();
  const r = await fetch(path, method === "GET" ? options : { ...options, headers: withCsrf(options.headers) });
  if (r.status === 401 && path !== "/api/v1/auth/login") {
    showLogin();
    throw new Error("请先登录 Please log in");
  }
  if (r.status === 204) return null;
  const body = r.headers.get("Content-Type")?.includes("json") ? await r.json() : await r.text();
  if (!r.ok) {
    const msg = body?.error?.message || `HTTP ${r.status}`;
    throw new Error(msg);
  }
  return body;
}

const localTime = (iso) => iso ? new Date(iso.replace(/\.(\d{3})\d*Z$/, ".$1Z")).toLocaleString("zh-CN", { timeZone: TZ, hour12: false }) : "—";
const mb = (n) => n == null ? "—" : (n / 1048576).toFixed(1) + " MB";
const gb = (n) => n == null ? "—" : (n / 1073741824).toFixed(1) + " GB";
const minutes = (s) => `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, "0")}`;

// --- tabs -------------------------------------------------------------------------------

for (const b of document.querySelectorAll("nav button")) {
  b.addEventListener("click", () => showTab(b.dataset.tab));
}
function showTab(name) {
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const s of document.querySelectorAll("section.tab")) s.hidden = s.id !== name;
  notice("");
  ({ contents: loadContents, distribution: loadAssignments, sessions: loadReadiness, fleet: loadFleet, reports: loadCoverage })[name]()
    .catch((e) => notice(e.message, true));
}

// --- contents and uploads ---------------------------------------------------------------

async function loadContents() {
  state.contents = await api("/api/v1/admin/contents");
  const body = $("#contents-table tbody");
  body.replaceChildren(...state.contents.map((c) => el("tr", { title: c.sha256 },
    el("td", {}, c.poster_sha256 ? el("img", { src: `/blobs/${c.poster_sha256}`, alt: "" }) : ""),
    el("td", { className: "title" }, c.title),
    el("td", {}, KINDS[c.kind] || c.kind),
    el("td", {}, minutes(c.duration_seconds)),
    el("td", {}, mb(c.size)),
    el("td", {}, `${c.video_codec}${c.audio_codec ? " / " + c.audio_codec : ""} ${c.width || ""}×${c.height || ""}`),
    el("td", {}, localTime(c.created_at)),
  )));
  const options = () => state.contents.map((c) => el("option", { value: c.id }, c.title));
  $("#assign-content").replaceChildren(...options());
  $("#session-contents").replaceChildren(...options());
}

function b64(text) {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

async function tusUpload(file, meta, onProgress) {
  const key = `tus:${file.name}:${file.size}:${file.lastModified}`;
  let location = localStorage.getItem(key);
  let offset = 0;
  if (location) {
    const r = await fetch(location, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
    if (r.ok) offset = Number(r.headers.get("Upload-Offset"));
    else location = null;
  }
  if (!location) {
    const metadata = Object.entries(meta).filter(([, v]) => v).map(([k, v]) => `${k} ${b64(v)}`).join(",");
    const r = await fetch("/api/v1/uploads", {
      method: "POST",
      headers: withCsrf({ "Tus-Resumable": "1.0.0", "Upload-Length": String(file.size), "Upload-Metadata": metadata }),
    });
    if (r.status !== 201) throw new Error((await r.json()).error.message);
    location = r.headers.get("Location");
    localStorage.setItem(key, location);
  }
  while (offset < file.size) {
    const r = await fetch(location, {
      method: "PATCH",
      headers: withCsrf({ "Tus-Resumable": "1.0.0", "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" }),
      body: file.slice(offset, offset + CHUNK),
    });
    if (r.status !== 204) {
      const body = await r.json().catch(() => ({}));
      if (r.status === 422 || r.status === 413 || r.status === 507 || r.status === 404) localStorage.removeItem(key);
      throw new Error(body?.error?.message || `HTTP ${r.status}`);
    }
    offset = Number(r.headers.get("Upload-Offset"));
    onProgress(offset / file.size);
    if (offset === file.size) {
      localStorage.removeItem(key);
      return r.headers.get("Yuanjiao-Content-Id");
    }
  }
  return null;
}

$("#upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = $("#upload-file").files[0];
  if (!file) return;
  const progress = $("#upload-progress");
  const status = $("#upload-status");
  const button = $("#upload-button");
  progress.hidden = false;
  button.disabled = true;
  status.textContent = "上传中… uploading";
  try {
    await tusUpload(file, {
      filename: file.name, title: $("#upload-title").value.trim(),
      kind: $("#upload-kind").value, description: $("#upload-description").value,
    }, (f) => { progress.value = f; status.textContent = `${Math.floor(f * 100)}%`; });
    status.textContent = "完成 done";
    notice(`已上传：${file.name}`);
    $("#upload-form").reset();
    await loadContents();
  } catch (e) {
    status.textContent = "";
    notice(`上传失败 Upload failed: ${e.message}`, true);
  } finally {
    progress.hidden = true;
    button.disabled = false;
  }
});

// --- distribution -----------------------------------------------------------------------

async function loadCounty() {
  if (state.units.length) return;
  [state.units, state.villages] = await Promise.all([api("/api/v1/admin/units"), api("/api/v1/admin/villages")]);
  $("#session-units").replaceChildren(...state.units.map((u) => el("option", { value: u.code }, `${u.name}（${u.villages}）`)));
}

async function fillTargets() {
  await loadCounty();
  const scope = $("#assign-scope").value;
  $("#assign-target-label").hidden = scope === "county";
  let options = [];
  if (scope === "unit") options = state.units.map((u) => [u.code, u.name]);
  if (scope === "village") options = state.villages.map((v) => [v.code, `${v.unit_name} ${v.name}`]);
  if (scope === "terminal") options = state.villages.filter((v) => v.terminals).map((v) => [`T${v.code}`, `T${v.code} ${v.name}`]);
  $("#assign-target").replaceChildren(...options.map(([v, t]) => el("option", { value: v }, t)));
}
$("#assign-scope").addEventListener("change", () => fillTargets().catch((e) => notice(e.message, true)));

async function loadAssignments() {
  if (!state.contents.length) await loadContents();
  await fillTargets();
  const rows = await api("/api/v1/admin/assignments");
  $("#assignments-table tbody").replaceChildren(...rows.map((a) => {
    const remove = el("button", {}, "撤回 Withdraw");
    remove.addEventListener("click", async () => {
      await api(`/api/v1/admin/assignments/${a.id}`, { method: "DELETE" }).catch((e) => notice(e.message, true));
      loadAssignments();
    });
    return el("tr", {}, el("td", {}, a.title), el("td", {}, SCOPES[a.scope]), el("td", {}, a.target || "—"),
      el("td", {}, a.needed_by ? localTime(a.needed_by).split(" ")[0] : "—"), el("td", {}, remove));
  }));
}

$("#assign-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const scope = $("#assign-scope").value;
  const needed = $("#assign-needed").value;
  try {
    await api("/api/v1/admin/assignments", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        content_id: $("#assign-content").value, scope,
        target: scope === "county" ? "" : $("#assign-target").value,
        needed_by: needed ? new Date(`${needed}T00:00:00+08:00`).toISOString() : null,
      }),
    });
    notice("已分发 Assigned");
    await loadAssignments();
  } catch (e) { notice(e.message, true); }
});

// --- sessions and readiness -------------------------------------------------------------

async function loadReadiness() {
  if (!state.contents.length) await loadContents();
  await loadCounty();
  const sessions = await api("/api/v1/admin/readiness");
  $("#readiness").replaceChildren(...(sessions.length ? sessions.map((s) => {
    const notReady = s.terminals.filter((t) => !t.ready);
    return el("details", {},
      el("summary", {}, `${localTime(s.starts_at)}  ${s.title} — 就绪 ready ${s.ready}/${s.total}`),
      el("ul", {}, ...notReady.slice(0, 300).map((t) => el("li", { className: "missing" },
        `${t.terminal_id} ${t.village_name}: 缺 missing ${t.missing.length}`))));
  }) : [el("p", {}, "暂无场次 No upcoming sessions")]));
}

$("#session-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const units = [...$("#session-units").selectedOptions].map((o) => o.value);
  const villages = state.villages.filter((v) => units.includes(v.unit_code) && v.terminals).map((v) => v.code);
  try {
    await api("/api/v1/admin/sessions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        title: $("#session-title").value.trim(),
        starts_at: new Date(`${$("#session-start").value}:00+08:00`).toISOString(),
        content_ids: [...$("#session-contents").selectedOptions].map((o) => o.value),
        village_codes: villages,
      }),
    });
    notice("已安排 Scheduled");
    await loadReadiness();
  } catch (e) { notice(e.message, true); }
});

// --- fleet ------------------------------------------------------------------------------

async function loadFleet() {
  const fleet = await api("/api/v1/admin/fleet");
  state.terminals = fleet.terminals;
  state.unenrolled = fleet.unenrolled;
  $("#fleet-summary").textContent = `在线 online ${fleet.online} / ${fleet.total}`;
  renderFleet();
}
function renderFleet() {
  const q = $("#fleet-filter").value.trim();
  const rows = state.terminals.filter((t) => !q || t.id.includes(q) || t.village_name.includes(q) || t.unit_name.includes(q));
  $("#fleet-table tbody").replaceChildren(...rows.map((t) => el("tr", {},
    el("td", {}, t.id), el("td", {}, t.village_name), el("td", {}, t.unit_name),
    el("td", { className: t.online ? "online" : "offline" }, t.online ? `在线 ${t.status || ""}` : "离线 offline"),
    el("td", {}, localTime(t.last_seen)), el("td", {}, t.ready_items), el("td", {}, gb(t.disk_free)),
    el("td", {}, t.outbox_backlog ?? "—"), el("td", {}, t.software_version || "—"),
    el("td", {}, ...(state.role === "admin" ? terminalActions(t) : [])))));
  const boxes = state.unenrolled || [];
  $("#unenrolled").replaceChildren(...(boxes.length ? [el("p", {}, `未登记的终端 Unenrolled boxes heard on the network: ${
    boxes.map((b) => `${b.village || "?"} @ ${b.addresses.join(", ")}:${b.port}`).join("；")}`)] : []));
}

function terminalActions(t) {
  const code = el("button", { className: "code" }, "登记码 Code");
  code.addEventListener("click", async () => {
    try {
      const made = await api(`/api/v1/admin/terminals/${t.id}/enrollment`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
      });
      notice(`${t.id} ${t.village_name} 登记码 enrollment code: ${made.code}（${localTime(made.expires_at)} 前有效 valid until）`);
    } catch (e) { notice(e.message, true); }
  });
  const revoke = el("button", { className: "revoke" }, "吊销 Revoke");
  revoke.addEventListener("click", async () => {
    if (!confirm(`吊销 ${t.id} ${t.village_name}？Revoke this terminal?`)) return;
    try {
      await api(`/api/v1/admin/terminals/${t.id}/revoke`, { method: "POST" });
      notice(`${t.id} 已吊销 revoked`);
    } catch (e) { notice(e.message, true); }
  });
  return [code, " ", revoke];
}
$("#fleet-filter").addEventListener("input", renderFleet);

// --- reports ----------------------------------------------------------------------------

function period() {
  const q = new URLSearchParams();
  if ($("#report-from").value) q.set("from", $("#report-from").value);
  if ($("#report-to").value) q.set("to", $("#report-to").value);
  return q;
}

async function loadCoverage() {
  const q = period();
  const report = await api(`/api/v1/admin/reports/coverage?${q}`);
  const csv = new URLSearchParams(q); csv.set("format", "csv");
  $("#coverage-csv").href = `/api/v1/admin/reports/coverage?${csv}`;
  $("#months-csv").href = `/api/v1/admin/reports/terminals?${csv}`;
  const levels = { county: "全县", unit: "乡镇", village: "村（社区）" };
  $("#coverage-table tbody").replaceChildren(...report.rows.map((r) => el("tr", {},
    el("td", {}, levels[r.level]), el("td", {}, r.name), el("td", {}, r.members), el("td", {}, r.trained),
    el("td", {}, `${(r.rate * 100).toFixed(1)}%`))));
}
$("#report-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadCoverage().catch((e) => notice(e.message, true)); });

$("#member-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const no = encodeURIComponent($("#member-no").value.trim());
  try {
    const r = await api(`/api/v1/admin/reports/members/${no}`);
    $("#member-record").replaceChildren(
      el("p", {}, `${r.name}（${r.village_name}）：参学 ${r.sessions} 次，计入受训 ${r.counted_sessions} 次，观看 ${minutes(r.watched_seconds)}`),
      el("a", { href: `/api/v1/admin/reports/members/${no}?format=csv` }, "导出 CSV"),
      el("ul", {}, ...r.entries.map((e) => el("li", {}, `${localTime(e.started_at)} ${e.village_name} ${e.contents || e.title}（${minutes(e.watched_seconds)}）`))));
  } catch (e) { notice(e.message, true); }
});

// --- login ------------------------------------------------------------------------------

function showLogin() {
  state.csrf = null;
  $("#login-form").hidden = false;
  $("nav").hidden = true;
  $("#who").hidden = true;
  for (const s of document.querySelectorAll("section.tab")) s.hidden = true;
}

function signedIn(session) {
  state.csrf = session.csrf_token;
  state.role = session.role;
  $("#login-form").hidden = true;
  $("nav").hidden = false;
  $("#who").hidden = false;
  $("#who-name").textContent = `${session.username}（${session.role === "admin" ? "管理员 admin" : "只读 viewer"}）`;
  for (const f of ["#upload-form", "#assign-form", "#session-form"]) $(f).hidden = session.role !== "admin";
  showTab("contents");
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const session = await api("/api/v1/auth/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: $("#login-user").value.trim(), password: $("#login-password").value }),
    });
    $("#login-password").value = "";
    signedIn(session);
  } catch (e) { notice(`登录失败 Login failed: ${e.message}`, true); }
});

$("#logout").addEventListener("click", async () => {
  await api("/api/v1/auth/logout", { method: "POST" }).catch(() => null);
  showLogin();
});

fetch("/api/v1/auth/session").then(async (r) => (r.ok ? signedIn(await r.json()) : showLogin()))
  .catch(() => showLogin());
