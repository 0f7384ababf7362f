// A terminal's state in words the county office uses, worst first.
import { parseTime } from "./fmt.js";

export const STATES = {
  offline_days: { zh: "停止上报", en: "stopped reporting", rank: 0, cls: "st-stopped" },
  late: { zh: "迟到", en: "late", rank: 1, cls: "st-late" },
  revoked: { zh: "已吊销", en: "revoked", rank: 2, cls: "st-revoked" },
  never: { zh: "未安装/未登记", en: "never enrolled", rank: 3, cls: "st-never" },
  online: { zh: "在线", en: "online", rank: 4, cls: "st-online" },
};

// online; late (silent less than a day); offline for days; never seen; revoked.
export function stateOf(t) {
  if (t.revoked) return "revoked";
  if (t.online) return "online";
  const seen = parseTime(t.last_seen);
  if (!seen) return "never";
  return Date.now() - seen.getTime() < 86400000 ? "late" : "offline_days";
}
export const daysSilent = (t) => { const s = parseTime(t.last_seen); return s ? Math.floor((Date.now() - s.getTime()) / 86400000) : null; };
