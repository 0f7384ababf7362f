// 内容库: list, search and filter contents; one content's page with preview, editing,
// where it is used, and retiring it (after a question saying what goes).
import { api, canEditContent, canUpload, currentSession, owner } from "../api.js";
import { cached, contents, forget } from "../data.js";
import { KINDS, bytes, clock, dateTime, day } from "../fmt.js";
import { $, el, h2, table, empty, notice, flash, confirmDialog, busy, button } from "../ui.js";

export async function render(root, [id]) {
  if (id) return renderOne(root, id);
  forget("/api/v1/admin/contents");
  const [list, reach] = await Promise.all([contents(), cached("/api/v1/admin/contents/reach", 10000)]);
  const byId = new Map(reach.map((r) => [r.content_id, r]));
  const search = el("input", { type: "search", id: "library-search", placeholder: "标题、简介、文件名 title or file" });
  const kind = el("select", { id: "library-kind" }, el("option", { value: "" }, "全部类别 All kinds"),
    Object.entries(KINDS).map(([k, v]) => el("option", { value: k }, v)));
  const count = el("span", { class: "count" });
  const holder = el("div");
  // Whose each content is matters once there are counties: a county's own or the province's.
  const several = Boolean(currentSession().county) || currentSession().counties > 1;
  function draw() {
    const q = search.value.trim().toLowerCase();
    const rows = list.filter((c) => (!kind.value || c.kind === kind.value) &&
      (!q || `${c.title} ${c.description} ${c.original_filename}`.toLowerCase().includes(q)));
    count.textContent = `共 ${rows.length} 个 ${rows.length} shown`;
    holder.replaceChildren(rows.length ? table([
      { label: "", render: (c) => c.poster_sha256 ? el("img", { src: `/blobs/${c.poster_sha256}`, alt: "", class: "thumb", loading: "lazy" }) : "" },
      { label: "标题", en: "Title", value: (c) => c.title, render: (c) => el("a", { href: `#/library/${c.id}`, class: "title" }, c.title) },
      { label: "类别", en: "Kind", value: (c) => KINDS[c.kind] || c.kind },
      ...(several ? [{ label: "归属", en: "Owner", value: (c) => owner(c)[0] }] : []),
      { label: "时长", en: "Length", value: (c) => c.duration_seconds, render: (c) => clock(c.duration_seconds), num: true },
      { label: "大小", en: "Size", value: (c) => c.size, render: (c) => bytes(c.size), num: true },
      { label: "分发到", en: "Assigned to", value: (c) => byId.get(c.id)?.targeted ?? 0,
        render: (c) => { const r = byId.get(c.id); return r && r.assignments ? `${r.targeted} 个终端` : "未分发"; }, num: true },
      { label: "已下载", en: "Held by", value: (c) => byId.get(c.id)?.holding ?? 0,
        render: (c) => `${byId.get(c.id)?.holding ?? 0} 个终端`, num: true },
      { label: "服务器发出 / 终端互传", en: "From server / peers", value: (c) => byId.get(c.id)?.bytes_from_server ?? 0,
        render: (c) => `${fromServer(byId.get(c.id))} / ${bytes(byId.get(c.id)?.bytes_from_peers ?? 0)}`, num: true },
      { label: "上传时间", en: "Added", value: (c) => c.created_at, render: (c) => dateTime(c.created_at) },
    ], rows, { id: "library-table" }) : empty("没有符合条件的内容。", "Nothing matches."));
  }
  search.addEventListener("input", draw);
  kind.addEventListener("change", draw);
  root.append(h2("内容库", "Library"),
    el("div", { class: "filters" }, el("label", {}, "搜索 Search", search), el("label", {}, "类别 Kind", kind), count,
      canUpload() ? el("a", { href: "#/upload", class: "button primary" }, "上传视频 Upload") : ""),
    holder);
  draw();
}

async function renderOne(root, id) {
  const [c, usage, reach] = await Promise.all([api(`/api/v1/admin/contents/${id}`),
    api(`/api/v1/admin/contents/${id}/usage`), api("/api/v1/admin/contents/reach")]);
  const traffic = reach.find((r) => r.content_id === id) || { bytes_from_server: 0, bytes_from_peers: 0 };
  const video = el("video", { controls: true, preload: "metadata", src: `/blobs/${c.sha256}`, id: "preview",
    poster: c.poster_sha256 ? `/blobs/${c.poster_sha256}` : null });
  const facts = el("dl", { class: "facts" },
    el("dt", {}, "类别"), el("dd", {}, KINDS[c.kind] || c.kind),
    el("dt", {}, "归属"), el("dd", { id: "owner" }, c.county
      ? `${owner(c)[0]}自己的内容（只分发到该县）` : "全省共用（各县都可使用）"),
    el("dt", {}, "时长"), el("dd", {}, clock(c.duration_seconds)),
    el("dt", {}, "大小"), el("dd", {}, bytes(c.size)),
    el("dt", {}, "画面"), el("dd", {}, `${c.video_codec} ${c.width || "?"}×${c.height || "?"}${c.audio_codec ? " / " + c.audio_codec : ""}`),
    el("dt", {}, "文件"), el("dd", {}, c.original_filename || "—"),
    el("dt", {}, "上传时间"), el("dd", {}, dateTime(c.created_at)));
  const holding = usage.terminals.filter((t) => t.holding);
  const targeted = usage.terminals.filter((t) => t.targeted);
  const where = el("div", { id: "usage" }, el("h3", {}, "分发情况 Where it goes"),
    usage.assignments.length ? el("ul", {}, usage.assignments.map((a) => el("li", {},
      `${a.target_name || a.target}${a.needed_by ? `（最迟 ${day(a.needed_by)} 到达）` : ""}`))) : el("p", {}, "尚未分发。Not assigned."),
    usage.sessions.length ? el("p", {}, "即将播放的场次：", usage.sessions.map((s) => `${dateTime(s.starts_at)} ${s.title}`).join("；")) : "",
    el("p", {}, `应下载 ${targeted.length} 个终端，已下载 ${holding.length} 个终端。`,
      el("small", {}, ` Meant for ${targeted.length} terminals, held by ${holding.length}.`)),
    el("p", { id: "traffic" }, `服务器发出 ${fromServer(traffic, true)}，终端之间互传 ${bytes(traffic.bytes_from_peers)}。`,
      el("small", {}, ` Sent by the server: ${fromServer(traffic, true)}; from terminal to terminal: ${bytes(traffic.bytes_from_peers)}.`)));
  root.append(el("p", {}, el("a", { href: "#/library" }, "← 返回内容库 Back to the library")),
    h2(c.title, "Content"), el("div", { class: "two" }, el("div", {}, video), el("div", {}, facts)),
    c.description ? el("p", { class: "description" }, c.description) : "", where);
  if (!canEditContent(c)) {
    if (c.county === null && currentSession().county) {
      root.append(el("p", { class: "note", id: "province-content" },
        "这是全省共用的内容：本县可以分发、排进场次，修改或下架请找省级管理员。",
        el("small", {}, " The province's content: this county uses it; the province changes it.")));
    }
    return;
  }

  const title = el("input", { id: "edit-title", value: c.title, maxlength: 200, required: true });
  title.addEventListener("input", () => title.setCustomValidity(""));
  const kind = el("select", { id: "edit-kind" }, Object.entries(KINDS).map(([k, v]) => el("option", { value: k, selected: k === c.kind }, v)));
  const description = el("textarea", { id: "edit-description", maxlength: 4000, rows: 3 }, c.description);
  const save = el("button", { type: "submit", class: "primary" }, "保存 Save");
  const form = el("form", { id: "edit-form" }, el("h3", {}, "修改 Edit"),
    el("label", {}, "标题 Title", title), el("label", {}, "类别 Kind", kind),
    el("label", { class: "wide" }, "简介 Description", description), save);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!title.value.trim()) {  // spaces alone are no title
      title.value = "";
      title.setCustomValidity("请填写标题 Enter a title");
      title.reportValidity();
      return;
    }
    busy(save, async () => {
      await api(`/api/v1/admin/contents/${id}`, { method: "PATCH",
        json: { title: title.value.trim(), kind: kind.value, description: description.value } });
      forget("/api/v1/admin/contents");
      notice("已保存 Saved");
      $("#screen-library h2").firstChild.textContent = title.value.trim();
    });
  });
  const retire = button("下架 Retire…", () => busy(retire, async () => {
    const names = holding.map((t) => `${t.unit_name} ${t.village_name}（${t.terminal_id}）`);
    const ok = await confirmDialog({
      title: `下架「${c.title}」？`,
      confirm: "下架 Retire",
      body: [
        el("p", {}, "下架后：Retiring it will:"),
        el("ul", {},
          el("li", {}, `撤回全部 ${usage.assignments.length} 条分发（${usage.assignments.map((a) => a.target_name || a.target).join("、") || "无"}）`),
          el("li", {}, `从 ${usage.sessions.length} 个即将举行的场次中去掉它`),
          el("li", {}, `已下载它的 ${holding.length} 个终端将在下次同步时删除该文件`)),
        names.length ? el("details", { open: names.length <= 8 }, el("summary", {}, `这些终端 Terminals (${names.length})`),
          el("ul", { class: "short" }, names.map((n) => el("li", {}, n)))) : "",
        el("p", { class: "note" }, "已有的学习记录仍保留该片名。Past attendance keeps its title."),
      ],
    });
    if (!ok) return;
    await api(`/api/v1/admin/contents/${id}/retire`, { method: "POST" });
    forget("/api/v1/admin/contents");
    flash(`已下架「${c.title}」`, "Retired");
    location.hash = "#/library";
  }), "danger");
  retire.id = "retire";
  // The province's account makes a county's own film every county's.
  const share = c.county && !currentSession().county ? button("设为全省共用 Share with every county…", () => busy(share, async () => {
    const ok = await confirmDialog({
      title: `把「${c.title}」设为全省共用？`,
      confirm: "设为全省共用 Share",
      body: [el("p", {}, `它现在是${owner(c)[0]}自己的内容。设为全省共用后，各县都能分发、排进场次；只有省级管理员能再修改或下架它。`),
        el("p", { class: "note" }, "这一步不能撤回。This cannot be undone.")],
    });
    if (!ok) return;
    await api(`/api/v1/admin/contents/${id}`, { method: "PATCH", json: { whole_province: true } });
    forget("/api/v1/admin/contents");
    flash(`「${c.title}」已设为全省共用`, "Shared with every county");
    root.replaceChildren();
    await renderOne(root, id);
  })) : "";
  if (share) share.id = "share";
  root.append(form, el("div", { class: "danger-zone" }, share, retire));
}

// Bytes the server sent are counted for the whole server, not per county: a county's
// account is told so rather than shown a figure that is not its own.
function fromServer(r, long = false) {
  if (r && r.bytes_from_server_known === false) return long ? "—（只按全省统计 counted for the province only）" : "—";
  return bytes(r?.bytes_from_server ?? 0);
}
