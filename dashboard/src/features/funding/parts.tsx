/** Small pieces of the funding screens: interval badge, APR cell, sparkline, countdown, pager. */
import { type Dec, fmtAge, fmtPct } from "../../lib/format";

/** How often the venue pays: the badge that keeps a 1 h rate from being read as an 8 h one. */
export function IntervalBadge({ hours }: { hours: number | null | undefined }) {
  if (hours === null || hours === undefined) return <span className="tag muted">?</span>;
  const tone = hours === 1 ? "interval-1h" : hours <= 4 ? "interval-4h" : "interval-8h";
  return (
    <span className={`tag ${tone}`} data-testid="interval-badge" title={`pays every ${hours} h (${24 / hours} times a day)`}>
      {hours}h
    </span>
  );
}

/** "at cap" when the rate sits at the venue's cap or floor (nothing when no bound is known or not at it). */
export function CapBadge({ atCap, cap, floor }: { atCap: boolean | null | undefined; cap: Dec; floor: Dec }) {
  if (atCap !== true) return null;
  return (
    <span className="tag at-cap" data-testid="at-cap-badge" title={`the venue caps this rate at ${fmtPct(cap === null || cap === undefined ? null : Number(cap) * 100, 4)} / ${fmtPct(floor === null || floor === undefined ? null : Number(floor) * 100, 4)} per interval`}>
      at cap
    </span>
  );
}

/** An APR in percent, green when shorts are paid (positive), red when longs are. */
export function Apr({ value, decimals = 2 }: { value: Dec; decimals?: number }) {
  const n = Number(value);
  const tone = value === null || value === undefined || !Number.isFinite(n) ? "" : n > 0 ? "pos" : n < 0 ? "neg" : "";
  return <span className={`num ${tone}`}>{fmtPct(value, decimals)}</span>;
}

/** The settled APRs of the period, oldest first; min and max on hover. */
export function Sparkline({ values, width = 80, height = 18 }: { values: Dec[]; width?: number; height?: number }) {
  const points = values.map(Number).filter(Number.isFinite);
  if (points.length < 2) return <span className="muted small">—</span>;
  const lo = Math.min(...points, 0);
  const hi = Math.max(...points, 0);
  const span = hi - lo || 1;
  const xy = points.map((v, i) => `${((i / (points.length - 1)) * width).toFixed(1)},${(height - ((v - lo) / span) * height).toFixed(1)}`);
  const zero = height - ((0 - lo) / span) * height;
  return (
    <svg width={width} height={height} className="sparkline" data-testid="sparkline" aria-label={`min ${fmtPct(Math.min(...points), 2)}, max ${fmtPct(Math.max(...points), 2)}`}>
      <title>{`min ${fmtPct(Math.min(...points), 2)} · max ${fmtPct(Math.max(...points), 2)}`}</title>
      <line x1={0} x2={width} y1={zero} y2={zero} className="zero" />
      <polyline points={xy.join(" ")} fill="none" />
    </svg>
  );
}

/** Time left to the next settlement ("~" when the venue sends no time and the UTC grid is assumed). */
export function Countdown({ at, now, estimated }: { at: number | null | undefined; now: number; estimated?: boolean }) {
  if (at === null || at === undefined) return <span className="muted">—</span>;
  const left = at - now;
  return (
    <span className="num" title={new Date(at).toISOString()}>
      {estimated ? "~" : ""}
      {left <= 0 ? "settling" : fmtAge(left)}
    </span>
  );
}

export function Pager({ page, totalPages, count, onPage }: { page: number; totalPages: number; count: number; onPage: (page: number) => void }) {
  return (
    <div className="toolbar small" data-testid="pager">
      <button type="button" disabled={page <= 1} onClick={() => onPage(page - 1)}>
        ‹ prev
      </button>
      <span className="muted num">
        page {page} / {totalPages} · {count} rows
      </span>
      <button type="button" disabled={page >= totalPages} onClick={() => onPage(page + 1)}>
        next ›
      </button>
    </div>
  );
}

/** "binance, okx" -> ["binance", "okx"] (the API answers 404 for a venue it does not know). */
export function venueList(text: string): string[] {
  return text
    .split(/[,\s]+/)
    .map((v) => v.trim().toLowerCase())
    .filter(Boolean);
}

/** A liquidity floor typed as "5m", "250k" or "1000000" (undefined when empty or invalid). */
export function parseVolume(text: string): number | undefined {
  const match = /^\s*([\d.]+)\s*([kmb]?)\s*$/i.exec(text);
  if (match === null) return undefined;
  const base = Number(match[1]);
  const scale = { "": 1, k: 1e3, m: 1e6, b: 1e9 }[(match[2] ?? "").toLowerCase()] ?? 1;
  return Number.isFinite(base) ? base * scale : undefined;
}
