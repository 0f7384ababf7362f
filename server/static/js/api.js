// The JSON API: one fetch wrapper, the CSRF token, and every server error turned into
// Chinese first, English second. Error shape: {"error": {code, message, message_en?, details?}}.

const session = { csrf: null, role: null, username: null, county: null, counties: 1 };

// Chinese for the server's error codes, used when the server sends no message_en (an
// older server whose `message` is English) or sends no body at all.
const CODES = {
  bad_request: "请求有误，请检查填写的内容",
  unauthorized: "请先登录，或用户名、密码不对",
  forbidden: "没有权限做这件事（只读账号不能修改）",
  csrf: "页面已过期，请刷新页面后再试",
  read_only: "只读账号不能修改",
  not_found: "没有找到，可能已被删除",
  conflict: "与现有记录冲突，请刷新页面后再试",
  gone: "上传已过期，请重新选择文件上传",
  service_unavailable: "服务器暂时无法处理（例如媒体存储连不上）；已收到的数据完好保留，请稍后点「重试」",
  precondition_failed: "请求条件不满足，请刷新页面后再试",
  tus_version: "上传组件版本不符，请刷新页面",
  too_large: "文件太大，超过服务器允许的大小；请压缩视频或分段后再上传",
  range_not_satisfiable: "请求的范围超出文件大小",
  unsupported_media_type: "文件或数据格式不对，请换成 MP4 视频或 CSV/XLSX 表格",
  unprocessable: "内容无法处理，请检查后再试",
  invalid_body: "填写的内容不符合要求",
  invalid_json: "数据格式不对",
  too_many_requests: "尝试次数太多，请稍等几分钟再试",
  checksum_mismatch: "文件在传输中损坏，请检查网络后重新上传",
  insufficient_storage: "服务器磁盘已满，请联系技术人员清理空间",
  not_a_video: "这不是可以播放的视频文件，请选择 MP4 等视频文件",
  unknown_content: "所选内容不存在，可能已被下架",
  unknown_target: "所选乡镇、村或终端不存在",
  unknown_village: "所选村（社区）不存在",
  unknown_terminal: "没有这个终端",
  terminal_revoked: "该终端已被吊销",
  in_the_past: "时间已经过去，请选择今后的日期和时间",
  session_past: "该场次已经举行，不能再修改",
  already_retired: "该内容已经下架",
  bad_roster: "名册文件无法读取，请使用 CSV 或 XLSX 格式，第一行为表头",
  bad_enrollment_code: "登记码不对或已过期",
  empty_query: "请输入姓名或党员序号",
  record_conflict: "记录冲突",
  province_only: "县级账号不能使用此功能：这是省级管理员的工作",
  unknown_county: "没有这个县：请先导入该县的乡镇",
  internal: "服务器出错，请稍后再试或联系技术人员",
  network: "连不上服务器，请检查网络后再试",
};
const STATUS = { 400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
  409: "conflict", 410: "gone", 412: "precondition_failed", 413: "too_large",
  415: "unsupported_media_type", 422: "unprocessable", 429: "too_many_requests",
  460: "checksum_mismatch", 503: "service_unavailable", 507: "insufficient_storage" };

export class ApiError extends Error {
  constructor(status, code, zh, en, details) {
    super(zh);
    this.status = status;
    this.code = code;
    this.zh = zh;
    this.en = en;
    this.details = details;
  }
}

// An error body (already parsed, or null) and its status into an ApiError.
export function errorFrom(status, body) {
  const e = body && body.error ? body.error : {};
  const code = e.code || STATUS[status] || (status >= 500 ? "internal" : "bad_request");
  let zh = e.message_en ? e.message : null;
  let en = e.message_en || e.message || `HTTP ${status}`;
  if (!zh) zh = CODES[code] || CODES[STATUS[status]] || CODES.internal;
  return new ApiError(status, code, zh, en, e.details);
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }
export const currentSession = () => session;
export const canWrite = () => session.role === "admin";
// What "every terminal" is called: the county's own in a county deployment or for a county's
// account (whose "every terminal" is its county), the province's for the province's account.
export const everywhere = () => (!session.county && !viewing && session.counties > 1 ? ["全省", "Whole province"] : ["全县", "Whole county"]);

// The county the province's account is looking at ("" for the whole province): every
// admin read then carries ?county=, and the server answers it as that county's account.
let viewing = sessionStorage.getItem("yj-county-view") || "";
export const countyView = () => viewing;
export function setCountyView(code) {
  viewing = code || "";
  if (viewing) sessionStorage.setItem("yj-county-view", viewing); else sessionStorage.removeItem("yj-county-view");
}
// `path` (an admin read, a link to a download) as seen for the county looked at.
export function viewed(path) {
  if (!viewing || session.county || !path.startsWith("/api/v1/admin/")) return path;
  return `${path}${path.includes("?") ? "&" : "?"}county=${encodeURIComponent(viewing)}`;
}
// Every admin uploads: the province's account for the province, a county's for its own.
export const canUpload = () => canWrite();
// A content is changed or retired by the province's account, or by the county that owns
// it (its own uploads); a county's account only uses the province's contents.
export const canEditContent = (c) => canWrite() && (!session.county || c.county === session.county);
// Who a content belongs to, as a person reads it: 全省 (every county's), 本县, or a county.
export function owner(c) {
  if (!c.county) return ["全省", "Province"];
  if (session.county) return ["本县", "This county"];
  const o = document.querySelector(`#county-view option[value="${c.county}"]`);
  return [o ? o.textContent.replace(/（\d{6}）$/, "") : c.county, "County"];
}

export function csrfHeaders(headers = {}) {
  return session.csrf ? { ...headers, "X-CSRF-Token": session.csrf } : headers;
}

// fetch a path of the API; JSON in and out. Throws ApiError.
export async function api(path, { method = "GET", json, body, headers = {}, raw = false } = {}) {
  if (method === "GET") path = viewed(path);
  const init = { method, headers: method === "GET" ? headers : csrfHeaders(headers) };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network", CODES.network, "The server cannot be reached");
  }
  if (r.status === 401 && path !== "/api/v1/auth/login") {
    onUnauthorized();
  }
  if (r.status === 204) return null;
  const isJson = (r.headers.get("Content-Type") || "").includes("json");
  const data = isJson ? await r.json().catch(() => null) : (raw ? r : await r.text());
  if (!r.ok) throw errorFrom(r.status, isJson ? data : null);
  return data;
}

export function setSession(s) {
  session.csrf = s ? s.csrf_token : null;
  session.role = s ? s.role : null;
  session.username = s ? s.username : null;
  session.county = s ? s.county || null : null;
  session.counties = s ? s.counties || 1 : 1;
}
