// County formats whatever the browser's locale: YYYY-MM-DD HH:mm, 24 h, in the county's
// time zone (Asia/Shanghai unless the server names another).

let zone = "Asia/Shanghai";
let parts = null;

export function setTimeZone(tz) {
  try {
    new Intl.DateTimeFormat("en-GB", { timeZone: tz });
    zone = tz;
  } catch { zone = "Asia/Shanghai"; }
  parts = null;
}
export const timeZone = () => zone;

function formatter() {
  if (!parts) {
    parts = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    });
  }
  return parts;
}

// RFC 3339 from the server (microseconds allowed) to a Date.
export function parseTime(iso) {
  if (!iso) return null;
  const d = new Date(String(iso).replace(/\.(\d{3})\d+/, ".$1").replace(" ", "T"));
  return Number.isNaN(d.getTime()) ? null : d;
}

function fields(d) {
  const out = {};
  for (const p of formatter().formatToParts(d)) out[p.type] = p.value;
  return out;
}

export function dateTime(iso) {
  const d = iso instanceof Date ? iso : parseTime(iso);
  if (!d) return "—";
  const f = fields(d);
  return `${f.year}-${f.month}-${f.day} ${f.hour}:${f.minute}`;
}
export function day(iso) {
  const d = iso instanceof Date ? iso : parseTime(iso);
  if (!d) return "—";
  const f = fields(d);
  return `${f.year}-${f.month}-${f.day}`;
}
export const today = () => day(new Date());

// Minutes the zone is ahead of UTC at instant `ms`.
function offsetAt(ms) {
  const f = fields(new Date(ms));
  return (Date.UTC(+f.year, +f.month - 1, +f.day, +f.hour, +f.minute) - Math.floor(ms / 60000) * 60000) / 60000;
}

// "2026-12-01" and "19:30" in county time → a Date; null when malformed.
export function countyToDate(dayText, timeText = "00:00") {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec((dayText || "").trim());
  const t = /^(\d{1,2}):(\d{2})$/.exec((timeText || "").trim());
  if (!m || !t || +t[1] > 23 || +t[2] > 59 || +m[2] < 1 || +m[2] > 12 || +m[3] < 1 || +m[3] > 31) return null;
  const guess = Date.UTC(+m[1], +m[2] - 1, +m[3], +t[1], +t[2]);
  const d = new Date(guess - offsetAt(guess) * 60000);
  return day(d) === `${m[1]}-${m[2]}-${m[3]}` ? d : null;
}
export const timeOfDay = (iso) => dateTime(iso).slice(11);

export function bytes(n) {
  if (n == null) return "—";
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}
export function hoursMinutes(seconds) {
  const total = Math.round((seconds || 0) / 60);
  const h = Math.floor(total / 60), m = total % 60;
  return h ? (m ? `${h} 小时 ${m} 分钟` : `${h} 小时`) : `${m} 分钟`;
}
export function clock(seconds) {
  const s = Math.round(seconds || 0);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? `${h}:${String(m).padStart(2, "0")}` : `${m}`) + `:${String(r).padStart(2, "0")}`;
}
export function ago(iso) {
  const d = parseTime(iso);
  if (!d) return "从未";
  const s = (Date.now() - d.getTime()) / 1000;
  if (s < 120) return "刚刚";
  if (s < 3600) return `${Math.round(s / 60)} 分钟前`;
  if (s < 86400 * 2) return `${Math.round(s / 3600)} 小时前`;
  return `${Math.floor(s / 86400)} 天前`;
}
export const percent = (r) => `${(r * 100).toFixed(1)}%`;
export const KINDS = { feature_film: "专题片", lecture: "党课/讲座", farming_technique: "农业实用技术" };

// A terminal clock's offset from the server: "快 5 分钟" (ahead) or "慢 2 小时" (behind).
export function skew(seconds) {
  if (seconds == null) return "—";
  const a = Math.abs(seconds), sign = seconds >= 0 ? "快" : "慢";
  if (a < 120) return `${sign} ${Math.round(a)} 秒`;
  if (a < 7200) return `${sign} ${Math.round(a / 60)} 分钟`;
  if (a < 172800) return `${sign} ${Math.round(a / 3600)} 小时`;
  return `${sign} ${Math.round(a / 86400)} 天`;
}
