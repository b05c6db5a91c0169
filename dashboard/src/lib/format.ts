/**
 * Display formatting only. The API sends every price, size and spread as a JSON number that
 * carries the server's exact decimal digits (decision 0020; Kafka topics keep decimal strings,
 * 0003). Strings are still accepted (older payloads, tests); these helpers never feed a number
 * back into any calculation.
 */

const DASH = "—";

/** A decimal as the API sends it: a JSON number (or, from older payloads, a decimal string). */
export type Dec = number | string | null | undefined;

/** Plain decimal text of a number: never exponent notation ("1.12e-8" -> "0.0000000112"). */
export function decText(value: number | string): string {
  if (typeof value === "string") return value;
  const text = String(value);
  if (!/e/i.test(text)) return text;
  return value.toFixed(20).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
}

/** A price as sent, trimmed to a readable number of significant digits. */
export function fmtPrice(value: Dec, significant = 8): string {
  if (value === null || value === undefined || value === "") return DASH;
  const text = decText(value);
  const [intPart = "", frac = ""] = text.split(".");
  const digits = intPart.replace("-", "").replace(/^0+/, "").length;
  if (frac === "") return text;
  if (digits >= significant) return intPart;
  if (digits === 0) {
    // 0.0000112: keep the leading zeros plus `significant - 2` digits.
    const lead = frac.match(/^0*/)?.[0].length ?? 0;
    return `${intPart}.${frac.slice(0, Math.min(frac.length, lead + Math.max(significant - 2, 2)))}`;
  }
  return `${intPart}.${frac.slice(0, significant - digits)}`;
}

/** A fraction (0.0012) as a percentage ("0.120 %"). */
export function fmtFractionPct(value: Dec, decimals = 3): string {
  if (value === null || value === undefined || value === "") return DASH;
  const n = Number(value);
  return Number.isFinite(n) ? `${(n * 100).toFixed(decimals)} %` : DASH;
}

/** A percentage that already is in percent (0.12 = 0.12 %). */
export function fmtPct(value: Dec, decimals = 3): string {
  if (value === null || value === undefined || value === "") return DASH;
  const n = Number(value);
  return Number.isFinite(n) ? `${n.toFixed(decimals)} %` : DASH;
}

export function fmtQty(value: Dec): string {
  if (value === null || value === undefined || value === "") return DASH;
  const n = Number(value);
  if (!Number.isFinite(n)) return DASH;
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (Math.abs(n) >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return fmtPrice(value, 6);
}

export function fmtAge(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return DASH;
  const v = Math.max(0, ms);
  if (v < 1000) return `${Math.round(v)}ms`;
  if (v < 60_000) return `${(v / 1000).toFixed(v < 10_000 ? 1 : 0)}s`;
  if (v < 3_600_000) return `${Math.floor(v / 60_000)}m${Math.floor((v % 60_000) / 1000)}s`;
  return `${Math.floor(v / 3_600_000)}h${Math.floor((v % 3_600_000) / 60_000)}m`;
}

export function fmtTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return DASH;
  const d = new Date(ms);
  return d.toISOString().slice(11, 23);
}

export function nsToMs(ns: number): number {
  return Math.floor(ns / 1_000_000);
}

/** Compare two decimals numerically for sorting/flash direction (display only). */
export function cmpDecimal(a: Dec, b: Dec): number {
  const x = a === null || a === undefined ? Number.NaN : Number(a);
  const y = b === null || b === undefined ? Number.NaN : Number(b);
  if (Number.isNaN(x) && Number.isNaN(y)) return 0;
  if (Number.isNaN(x)) return 1;
  if (Number.isNaN(y)) return -1;
  return x - y;
}
