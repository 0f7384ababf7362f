// 名册导入: upload the roster (CSV or XLSX), see every row the server would take or
// refuse (a dry run), then import for real.
import { api, canWrite } from "../api.js";
import { el, h2, table, empty, notice, confirmDialog, busy } from "../ui.js";

const STATUS = { ok: "可导入", refused: "拒绝", warning: "提醒" };

export async function render(root) {
  root.append(h2("导入党员名册", "Import the member roster"));
  if (!canWrite()) { root.append(empty("只读账号不能导入名册。", "Viewers cannot import.")); return; }
  const file = el("input", { type: "file", id: "roster-file", accept: ".csv,.xlsx,text/csv" });
  const check = el("button", { type: "submit", class: "primary" }, "预览 Preview");
  const out = el("div", { id: "roster-preview" });
  const form = el("form", { id: "roster-form" }, el("label", {}, "名册文件（CSV 或 XLSX） Roster file", file), check);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = file.files[0];
    if (!f) return notice("请先选择名册文件。", "Choose a file.", "error");
    busy(check, async () => {
      const type = f.name.toLowerCase().endsWith(".xlsx") ? "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" : "text/csv";
      const report = await api("/api/v1/admin/members/import?dry_run=1", { method: "POST", body: f, headers: { "Content-Type": type } });
      if (!report.dry_run) {
        // An older server imports at once and has no preview.
        out.replaceChildren(el("p", { class: "ok" }, `已导入：新增 ${report.added} 人，更新 ${report.updated} 人，拒绝 ${report.rejected} 行。`,
          el("small", { class: "en" }, " This server imported without a preview.")));
        return;
      }
      const rows = report.rows || [];
      const counts = { ok: 0, refused: 0, warning: 0 };
      for (const r of rows) counts[r.status] = (counts[r.status] || 0) + 1;
      const go = el("button", { type: "button", class: "primary", id: "roster-import" }, `导入 ${counts.ok + counts.warning} 行 Import`);
      go.addEventListener("click", () => busy(go, async () => {
        const ok = await confirmDialog({ title: "导入名册？", confirm: "导入 Import", danger: false,
          body: [el("p", {}, `将导入 ${counts.ok + counts.warning} 行，已有的同序号党员信息会被更新；${counts.refused} 行被拒绝，不会导入。`)] });
        if (!ok) return;
        const done = await api("/api/v1/admin/members/import", { method: "POST", body: f, headers: { "Content-Type": type } });
        out.replaceChildren(el("p", { class: "ok" }, `已导入：新增 ${done.added} 人，更新 ${done.updated} 人，拒绝 ${done.rejected} 行。`));
      }));
      out.replaceChildren(
        el("p", {}, `共 ${rows.length} 行：可导入 ${counts.ok}，提醒 ${counts.warning}，拒绝 ${counts.refused}`,
          report.skipped_title_rows ? `（跳过标题行 ${report.skipped_title_rows} 行）` : "", report.rows_truncated ? "（只列出前面的行）" : ""),
        go,
        table([
          { label: "行", en: "Line", value: (r) => r.line, num: true },
          { label: "序号", en: "No.", value: (r) => r.member_no },
          { label: "姓名", en: "Name", value: (r) => r.name },
          { label: "村代码", en: "Village", value: (r) => r.village_code },
          { label: "结果", en: "Result", value: (r) => STATUS[r.status] || r.status, cls: (r) => r.status === "refused" ? "below" : r.status === "warning" ? "warn" : "" },
          { label: "说明", en: "Message", value: (r) => r.message || "" },
        ], rows, { id: "roster-rows", sortBy: 4 }));
    });
  });
  root.append(form, out);
}
