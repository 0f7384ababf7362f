// 场次: schedule one session or plan a series (winter training: dates, courses,
// villages); list, edit and cancel upcoming sessions; past ones with their roll call.
import { api, canWrite } from "../api.js";
import { contents, countyTree, villages as villageList } from "../data.js";
import { KINDS, countyToDate, dateTime, day, timeOfDay, hoursMinutes, parseTime } from "../fmt.js";
import { $, el, h2, table, empty, notice, flash, confirmDialog, busy, button, showError } from "../ui.js";
import { countyPicker } from "../tree.js";

export async function render(root, [sub, id]) {
  if (sub === "roll" && id) return rollCall(root, id);
  // Past sessions of the last 90 days; older ones are in the reports.
  const since = day(new Date(Date.now() - 90 * 86400000));
  const [sessions, list, tree, villages] = await Promise.all([api(`/api/v1/admin/sessions?since=${since}`), contents(), countyTree(), villageList()]);
  const vname = new Map(villages.map((v) => [v.code, v.name]));
  const now = Date.now();
  const upcoming = sessions.filter((s) => parseTime(s.starts_at).getTime() >= now);
  const past = sessions.filter((s) => parseTime(s.starts_at).getTime() < now).reverse();
  root.append(h2("场次", "Sessions"));
  if (canWrite()) root.append(scheduleForm(list, tree, root), seriesForm(list, tree, root));
  const editor = el("div", { id: "session-editor" });
  const where = (s) => s.villages.length > 3 ? `${s.villages.slice(0, 3).map((c) => vname.get(c) || c).join("、")} 等 ${s.villages.length} 个村`
    : s.villages.map((c) => vname.get(c) || c).join("、");
  root.append(el("h3", {}, "即将举行 Upcoming"), editor, upcoming.length ? table([
    { label: "时间", en: "When", value: (s) => s.starts_at, render: (s) => dateTime(s.starts_at) },
    { label: "名称", en: "Title", value: (s) => s.title },
    { label: "内容", en: "Contents", value: (s) => s.items.map((i) => i.title).join("、") || "（无）" },
    { label: "村（社区）", en: "Villages", value: (s) => s.villages.length, render: where },
    ...(canWrite() ? [{ label: "", render: (s) => el("span", { class: "actions" },
      button("修改 Edit", () => edit(editor, s, root, list, tree), "edit"), " ",
      button("取消场次 Cancel…", async () => {
        const ok = await confirmDialog({ title: `取消场次「${s.title}」？`, confirm: "取消场次 Cancel session",
          body: [el("p", {}, `${dateTime(s.starts_at)} 在 ${s.villages.length} 个村的这场学习将被取消，终端会在下次同步时从日程中去掉它。`),
            el("p", { class: "en" }, `The session in ${s.villages.length} villages is removed from their schedules.`)] });
        if (!ok) return;
        await api(`/api/v1/admin/sessions/${s.id}`, { method: "DELETE" }).then(() => {
          flash(`已取消：${s.title}`, "Cancelled"); reload(root);
        }).catch((e) => notice(e.zh, e.en, "error"));
      }, "danger cancel")) }] : []),
  ], upcoming, { id: "upcoming-table" }) : empty("没有即将举行的场次。", "No upcoming sessions."));
  root.append(el("h3", {}, "已举行（近 90 天） Past 90 days"), past.length ? table([
    { label: "时间", en: "When", value: (s) => s.starts_at, render: (s) => dateTime(s.starts_at) },
    { label: "名称", en: "Title", value: (s) => s.title },
    { label: "村（社区）", en: "Villages", value: (s) => s.villages.length, render: where },
    { label: "", render: (s) => el("a", { href: `#/sessions/roll/${s.id}` }, "点名册 Roll call") },
  ], past, { id: "past-table", limit: 200 }) : empty("还没有已举行的场次。", "No past sessions."));
}

function reload(root) {
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

function contentChecks(list, name) {
  return el("div", { class: "checklist", id: name }, list.length ? list.map((c) =>
    el("label", {}, el("input", { type: "checkbox", value: c.id }), ` ${c.title} `, el("small", {}, KINDS[c.kind])))
    : empty("内容库是空的，请先上传。", "No contents yet."));
}

// "2026-12-01" + "19:30" → ISO, or a notice and null.
function when(dayText, timeText) {
  const d = countyToDate(dayText, timeText);
  if (!d) { notice("日期应写成 2026-12-01，时间写成 19:30（24 小时制）。", "Date as YYYY-MM-DD, time as HH:mm.", "error"); return null; }
  if (d.getTime() < Date.now()) { notice(`${dayText} ${timeText} 已经过去，请选择今后的日期和时间。`, "That time is in the past.", "error"); return null; }
  return d.toISOString();
}

// The trimmed title, or null (and a notice, the box focused) when only spaces were typed.
function titleOf(box) {
  const text = box.value.trim();
  if (!text) { notice("请填写场次名称。", "Give the session a title.", "error"); box.focus(); return null; }
  return text;
}

function scheduleForm(list, tree, root) {
  const title = el("input", { id: "session-title", required: true, maxlength: 200, placeholder: "冬训第一课" });
  const d = el("input", { id: "session-day", required: true, placeholder: "2026-12-01", inputmode: "numeric" });
  const t = el("input", { id: "session-time", required: true, placeholder: "19:30", value: "19:30", inputmode: "numeric" });
  const checks = contentChecks(list, "session-contents");
  const picker = countyPicker(tree, { terminals: false, id: "session-tree" });
  const go = el("button", { type: "submit", class: "primary" }, "安排 Schedule");
  const form = el("form", { id: "session-form" }, el("details", {}, el("summary", {}, "安排一场 Schedule a session"),
    el("label", {}, "名称 Title", title), el("label", {}, "日期 Date (YYYY-MM-DD)", d), el("label", {}, "时间 Time (HH:mm)", t),
    el("fieldset", {}, el("legend", {}, "内容 Contents"), checks), picker, go));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(go, async () => {
      const name = titleOf(title);
      if (!name) return;
      const starts = when(d.value, t.value);
      if (!starts) return;
      const ids = [...checks.querySelectorAll("input:checked")].map((b) => b.value);
      const codes = picker.villageCodes();
      if (!ids.length || !codes.length) return notice("请选择内容和村（社区）。", "Choose contents and villages.", "error");
      await api("/api/v1/admin/sessions", { method: "POST", json: { title: name, starts_at: starts, content_ids: ids, village_codes: codes } });
      flash(`已安排：${name}（${d.value} ${t.value}，${codes.length} 个村）`, "Scheduled");
      reload(root);
    });
  });
  return form;
}

function seriesForm(list, tree, root) {
  const prefix = el("input", { id: "series-title", value: "冬训", maxlength: 150 });
  const first = el("input", { id: "series-first", placeholder: "2026-12-05", inputmode: "numeric" });
  const count = el("input", { id: "series-count", type: "number", min: 1, max: 30, value: 4 });
  const every = el("input", { id: "series-every", type: "number", min: 1, max: 60, value: 7 });
  const time = el("input", { id: "series-time", value: "19:30", inputmode: "numeric" });
  const rows = el("div", { id: "series-rows" });
  const picker = countyPicker(tree, { terminals: false, id: "series-tree" });
  const plan = button("生成日程 Make the plan", () => {
    const start = countyToDate(first.value, time.value);
    if (!start) return notice("第一课日期应写成 2026-12-05，时间 19:30。", "First date as YYYY-MM-DD.", "error");
    const n = Math.max(1, Math.min(30, +count.value || 1));
    rows.replaceChildren(...Array.from({ length: n }, (_, i) => {
      const at = new Date(start.getTime() + i * (+every.value || 7) * 86400000);
      const course = el("select", { class: "series-course" }, list.map((c, j) => el("option", { value: c.id, selected: j === i % list.length }, c.title)));
      return el("div", { class: "series-row" }, el("input", { class: "series-name", value: `${prefix.value}第${i + 1}课` }),
        el("input", { class: "series-day", value: day(at) }), el("input", { class: "series-at", value: timeOfDay(at) }), course);
    }));
  });
  const go = el("button", { type: "submit", class: "primary" }, "安排整个系列 Schedule the series");
  const form = el("form", { id: "series-form" }, el("details", {}, el("summary", {}, "规划系列（冬训） Plan a series"),
    el("label", {}, "名称 Title", prefix), el("label", {}, "第一课日期 First date", first), el("label", {}, "时间 Time", time),
    el("label", {}, "课数 Sessions", count), el("label", {}, "间隔天数 Every (days)", every), plan,
    el("p", { class: "hint" }, "每行一课：可改名称、日期、时间和课程。One row per session."), rows, picker, go));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(go, async () => {
      const codes = picker.villageCodes();
      const lines = [...rows.querySelectorAll(".series-row")];
      if (!lines.length) return notice("请先点「生成日程」。", "Make the plan first.", "error");
      if (!codes.length) return notice("请选择参加的村（社区）。", "Choose villages.", "error");
      // Every row is checked before any is sent, so a fault in row 3 leaves nothing scheduled.
      const plans = [];
      for (const r of lines) {
        const name = titleOf(r.querySelector(".series-name"));
        if (!name) return;
        const starts = when(r.querySelector(".series-day").value, r.querySelector(".series-at").value);
        if (!starts) return;
        plans.push({ title: name, starts_at: starts, content_ids: [r.querySelector(".series-course").value], village_codes: codes });
      }
      // The server may still refuse one (sessions are made one by one): those made leave the
      // form, so that sending it again after a fix makes the rest, never a second copy.
      for (const [i, p] of plans.entries()) {
        try {
          await api("/api/v1/admin/sessions", { method: "POST", json: p });
        } catch (e) {
          if (!i) throw e;
          showError(e, `已安排前 ${i} 场（已从列表中去掉），「${p.title}」起未安排：`);
          return;
        }
        lines[i].remove();
      }
      flash(`已安排 ${plans.length} 场「${prefix.value}」，${codes.length} 个村`, "Series scheduled");
      reload(root);
    });
  });
  return form;
}

function edit(holder, s, root, list, tree) {
  const title = el("input", { id: "edit-session-title", value: s.title, maxlength: 200 });
  const d = el("input", { id: "edit-session-day", value: day(s.starts_at) });
  const t = el("input", { id: "edit-session-time", value: timeOfDay(s.starts_at) });
  const checks = contentChecks(list, "edit-session-contents");
  const chosen = new Set(s.items.map((i) => i.id));
  for (const b of checks.querySelectorAll("input")) b.checked = chosen.has(b.value);
  const picker = countyPicker(tree, { terminals: false, id: "edit-session-tree" });
  picker.check(s.villages);
  const save = el("button", { type: "submit", class: "primary" }, "保存 Save");
  const form = el("form", { id: "edit-session-form" }, el("h3", {}, `修改「${s.title}」 Edit`),
    el("label", {}, "名称 Title", title), el("label", {}, "日期 Date", d), el("label", {}, "时间 Time", t),
    el("details", {}, el("summary", {}, "内容和村（社区） Contents and villages"),
      el("fieldset", {}, el("legend", {}, "内容 Contents"), checks), picker),
    save, " ", button("关闭 Close", () => holder.replaceChildren(), "secondary"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(save, async () => {
      const name = titleOf(title);
      if (!name) return;
      const starts = when(d.value, t.value);
      if (!starts) return;
      const ids = [...checks.querySelectorAll("input:checked")].map((b) => b.value);
      const codes = picker.villageCodes();
      if (!ids.length || !codes.length) return notice("请选择内容和村（社区）。", "Choose contents and villages.", "error");
      await api(`/api/v1/admin/sessions/${s.id}`, { method: "PATCH",
        json: { title: name, starts_at: starts, content_ids: ids, village_codes: codes } });
      flash(`已修改：${name}`, "Saved");
      reload(root);
    });
  });
  holder.replaceChildren(form);
  title.focus();
}

async function rollCall(root, id) {
  const [s, entries] = await Promise.all([api(`/api/v1/admin/sessions/${id}`), api(`/api/v1/admin/sessions/${id}/roll-call`)]);
  root.append(el("p", {}, el("a", { href: "#/sessions" }, "← 返回场次 Back to sessions")),
    h2(`点名册：${s ? s.title : id}`, "Roll call"), s ? el("p", {}, `${dateTime(s.starts_at)}，${s.villages.length} 个村（社区）`) : "");
  if (!entries.length) { root.append(empty("还没有终端上报这场的签到。", "No terminal has reported this session.")); return; }
  const people = entries.reduce((n, e) => n + e.members.length, 0);
  root.append(el("p", {}, `${entries.length} 个站点上报，共 ${people} 人次。`));
  root.append(table([
    { label: "乡镇", en: "Township", value: (e) => e.unit_name },
    { label: "村（社区）", en: "Village", value: (e) => e.village_name },
    { label: "开始", en: "Started", value: (e) => e.started_at, render: (e) => dateTime(e.started_at) },
    { label: "观看", en: "Watched", value: (e) => e.watched_seconds, render: (e) => hoursMinutes(e.watched_seconds) },
    { label: "人数", en: "People", value: (e) => e.members.length, num: true },
    { label: "签到党员", en: "Members", value: (e) => e.members.map((m) => m.name || m.member_no).join("、") },
  ], entries, { id: "roll-table" }));
}
