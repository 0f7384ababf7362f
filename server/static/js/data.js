// Data several screens share, fetched once per visit of a screen.
import { api } from "./api.js";

const cache = new Map();

export function cached(path, maxAgeMs = 30000) {
  const hit = cache.get(path);
  if (hit && Date.now() - hit.at < maxAgeMs) return hit.promise;  // maxAgeMs 0: always fresh
  const promise = api(path);
  promise.catch(() => cache.delete(path));
  cache.set(path, { at: Date.now(), promise });
  return promise;
}
export const forget = (prefix = "") => { for (const k of [...cache.keys()]) if (k.startsWith(prefix)) cache.delete(k); };

export const contents = () => cached("/api/v1/admin/contents", 0);
export const units = () => cached("/api/v1/admin/units", 600000);
export const villages = () => cached("/api/v1/admin/villages", 600000);
export const fleet = () => cached("/api/v1/admin/fleet", 10000);

// The county as a tree: townships → villages → terminals.
export async function countyTree() {
  const [u, v, f] = await Promise.all([units(), villages(), fleet()]);
  const byVillage = new Map();
  for (const t of f.terminals) {
    if (!byVillage.has(t.village_code)) byVillage.set(t.village_code, []);
    byVillage.get(t.village_code).push(t);
  }
  return u.map((unit) => ({
    code: unit.code, name: unit.name,
    villages: v.filter((x) => x.unit_code === unit.code).map((x) => ({
      code: x.code, name: x.name, terminals: byVillage.get(x.code) || [],
    })),
  }));
}
