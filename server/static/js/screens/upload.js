// 上传: several videos at once through tus-js-client (tus 1.0), with bytes, speed and
// time left, pause, cancel, and resume after a reload or a dropped link.
import { api, canWrite, csrfHeaders, errorFrom } from "../api.js";
import { forget } from "../data.js";
import { KINDS, bytes } from "../fmt.js";
import { el, h2, empty, confirmDialog, notice } from "../ui.js";

const CHUNK = 4 * 1024 * 1024;
const RETRY = [0, 1000, 3000, 5000, 10000, 20000, 30000];
// Refusals that sending the same file again cannot change: no 重试 button.
const FINAL = new Set(["content_of_another_county"]);
// The title and description travel base64-encoded in one request header (tus
// Upload-Metadata), which the server takes up to 8,000 bytes: about 1,900 Chinese
// characters of description. A longer one is written on the content's page afterwards.
const META_BYTES = 8000;
const utf8 = new TextEncoder();
const metaBytes = (meta) => Object.entries(meta)
  .reduce((n, [k, v]) => n + k.length + 2 + Math.ceil(utf8.encode(v).length / 3) * 4, 0);

export async function render(root) {
  root.append(h2("上传视频", "Upload videos"));
  if (!canWrite()) { root.append(empty("只读账号不能上传。", "Viewers cannot upload.")); return; }
  const input = el("input", { type: "file", id: "upload-files", multiple: true, accept: "video/*,.mp4,.mkv,.avi,.mpg,.ts,.flv,.wmv,.mov" });
  const list = el("div", { id: "upload-list" });
  const drop = el("label", { class: "drop" }, "选择或拖入视频文件（可多选） Choose or drop video files", input);
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => { ev.preventDefault(); drop.classList.remove("over"); add([...ev.dataTransfer.files]); });
  input.addEventListener("change", () => { add([...input.files]); input.value = ""; });
  const all = el("button", { type: "button", id: "upload-all", class: "primary", hidden: true,
    onclick: () => { for (const b of list.querySelectorAll(".upload-card:not(.done) .u-start:not([hidden])")) b.click(); } },
  "全部开始 Start all");
  root.append(el("p", { class: "hint" }, "大文件可随时暂停；断网或刷新页面后，重新选择同一个文件即可从断点继续。",
    el("small", { class: "en" }, "Pause any time; after a dropped link or a reload, choose the same file again to resume.")), drop, all, list);
  function add(files) {
    for (const f of files) list.append(card(f));
    all.hidden = list.children.length < 2;
  }
}

function card(file) {
  const base = file.name.replace(/\.[^.]+$/, "");
  const title = el("input", { class: "u-title", value: base, maxlength: 200, required: true });
  const kind = el("select", { class: "u-kind" }, Object.entries(KINDS).map(([k, v]) => el("option", { value: k }, v)));
  const description = el("textarea", { class: "u-description", rows: 1, maxlength: 4000 });
  const bar = el("progress", { max: file.size, value: 0 });
  const status = el("p", { class: "u-status" }, `${bytes(file.size)}，等待开始 waiting`);
  const start = el("button", { type: "button", class: "primary u-start" }, "开始上传 Start");
  const pause = el("button", { type: "button", class: "u-pause", hidden: true }, "暂停 Pause");
  const cancel = el("button", { type: "button", class: "u-cancel secondary" }, "取消 Cancel");
  const node = el("div", { class: "upload-card", dataset: { file: file.name } },
    el("h3", {}, file.name),
    el("div", { class: "fields" }, el("label", {}, "标题 Title", title), el("label", {}, "类别 Kind", kind),
      el("label", { class: "wide" }, "简介 Description", description)),
    bar, status, el("div", { class: "buttons" }, start, pause, cancel));
  let upload = null, paused = false, done = false, cancelling = false;
  const samples = [];

  function speedText(sent) {
    const now = performance.now();
    samples.push([now, sent]);
    while (samples.length > 2 && now - samples[0][0] > 5000) samples.shift();
    const [t0, b0] = samples[0];
    const rate = now > t0 ? ((sent - b0) / (now - t0)) * 1000 : 0;
    const left = rate > 0 ? (file.size - sent) / rate : null;
    const leftText = left == null ? "估算中" : left < 60 ? `${Math.ceil(left)} 秒` : `${Math.ceil(left / 60)} 分钟`;
    return `已传 ${bytes(sent)} / ${bytes(file.size)}（${Math.floor((sent / file.size) * 100)}%），速度 ${bytes(rate)}/秒，剩余约 ${leftText}`;
  }
  function refusal(err) {
    const res = err && err.originalResponse;
    if (!res) return { zh: "连不上服务器，上传已停止；网络恢复后点「继续」即可从断点继续。", en: String(err && err.message || err) };
    let body = null;
    try { body = JSON.parse(res.getBody()); } catch { body = null; }
    return errorFrom(res.getStatus(), body);
  }
  function fail(err) {
    const e = refusal(err);
    node.classList.add("failed");
    status.replaceChildren(el("strong", {}, "上传失败："), e.zh, e.en ? el("small", { class: "en" }, " " + e.en) : "");
    pause.hidden = true;
    // Another county's own film: sending the file again would be refused again, whole.
    if (FINAL.has(e.code)) { start.hidden = true; cancel.hidden = true; upload = null; return; }
    start.hidden = false; start.textContent = "重试 Retry";
  }
  function metadata() {
    const meta = { filename: file.name, title: title.value.trim() || base, kind: kind.value };
    if (description.value.trim()) meta.description = description.value.trim();
    return meta;
  }
  function make() {
    return new window.tus.Upload(file, {
      endpoint: "/api/v1/uploads", chunkSize: CHUNK, retryDelays: RETRY, metadata: metadata(),
      headers: csrfHeaders(), removeFingerprintOnSuccess: true, storeFingerprintForResuming: true,
      onShouldRetry(err) {
        const s = err.originalResponse ? err.originalResponse.getStatus() : 0;
        // While cancelling, the server may still be finishing the aborted chunk (409).
        if (cancelling) return s === 409 || s === 0 || s >= 500;
        if (s === 0 || s >= 500 && s !== 507) {
          status.textContent = "网络中断，正在自动重试… The link dropped; retrying";
          return true;
        }
        return false;
      },
      onProgress(sent) { bar.value = sent; status.textContent = speedText(sent); },
      async onSuccess({ lastResponse }) {
        done = true;
        bar.value = file.size;
        node.classList.add("done");
        pause.hidden = true; cancel.hidden = true;
        forget("/api/v1/admin/contents");
        // The title the library holds: a file already there keeps its content's title, and a
        // resumed upload the title it was started with.
        const id = lastResponse && lastResponse.getHeader("Yuanjiao-Content-Id");
        const held = id ? await api(`/api/v1/admin/contents/${id}`).catch(() => null) : null;
        const shown = held ? held.title : meta.title;
        status.textContent = `完成：「${shown}」已在内容库中 Done`;
        notice(`已上传：${shown}`, "Uploaded");
      },
      onError: fail,
    });
  }
  async function go() {
    node.classList.remove("failed");
    if (!upload) {
      if (metaBytes(metadata()) > META_BYTES) {
        notice(`「${file.name}」的简介太长（${description.value.trim().length} 字），随文件上传时最多约 1,900 个汉字：`
          + "请缩短或先留空，上传完成后在内容详情里补写（那里最多 4,000 字）。",
        "The description is too long to send with the file; shorten it, or add it on the content's page afterwards.", "error");
        description.focus();
        return;
      }
      upload = make();
      const previous = await upload.findPreviousUploads();
      if (previous.length) {
        upload.resumeFromPreviousUpload(previous[0]);
        status.textContent = "发现上次未完成的上传，从断点继续… Resuming where it stopped";
      }
    }
    for (const f of [title, kind, description]) f.disabled = true;
    start.hidden = true; pause.hidden = false; paused = false; pause.textContent = "暂停 Pause";
    samples.length = 0;
    upload.start();
  }
  start.addEventListener("click", () => { if (!title.value.trim()) title.value = base; go(); });
  pause.addEventListener("click", async () => {
    if (!upload) return;
    if (paused) { go(); return; }
    await upload.abort(false);
    paused = true;
    pause.textContent = "继续 Resume";
    status.textContent = `已暂停，已传 ${bytes(bar.value)} / ${bytes(file.size)} Paused`;
  });
  cancel.addEventListener("click", async () => {
    if (done) return;
    if (upload && bar.value > 0) {
      const ok = await confirmDialog({ title: `取消上传「${file.name}」？`, confirm: "取消上传 Cancel upload",
        body: [el("p", {}, `已传的 ${bytes(bar.value)} 将被删除，下次需从头上传。`),
          el("p", { class: "en" }, "The bytes sent so far are discarded.")] });
      if (!ok) return;
      cancelling = true;
      status.textContent = "正在取消… Cancelling";
      try { await upload.abort(true); } catch (err) { cancelling = false; fail(err); return; }
    }
    node.remove();
  });
  // A file chosen again after a reload: say at once that it will resume.
  const probe = make();
  probe.findPreviousUploads().then((prev) => {
    if (prev.length && !upload) {
      status.textContent = `此文件上次未传完，点「继续上传」将从断点继续 An unfinished upload of this file will resume`;
      start.textContent = "继续上传 Resume";
      node.classList.add("resumable");
    }
  }).catch(() => null);
  return node;
}
