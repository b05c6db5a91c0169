import { memo, useLayoutEffect, useRef } from "react";
import type { PriceEntry } from "../../api/types";
import { cmpDecimal, fmtAge, fmtPrice } from "../../lib/format";

export interface CellProps {
  entry: PriceEntry | undefined;
  ageMs: number | null;
  stale: boolean;
  bestBid: boolean;
  bestAsk: boolean;
  showMid: boolean;
}

const FLASH_MS = 350;
const flashing = new Map<HTMLElement, number>();
let sweeper: ReturnType<typeof setInterval> | undefined;

/**
 * Flash = an attribute (CSS paints the background) removed by one shared sweeper. No per-cell
 * animation or timer: with hundreds of cells changing every second, running animations on each
 * cost a frame rate of ~12 fps in the stress test; this costs two style changes per update.
 */
function flash(el: HTMLElement | null, direction: number): void {
  if (el === null || direction === 0) return;
  el.dataset.flash = direction > 0 ? "up" : "down";
  flashing.set(el, performance.now() + FLASH_MS);
  if (sweeper === undefined) {
    sweeper = setInterval(() => {
      const now = performance.now();
      for (const [cell, until] of flashing) {
        if (until <= now || !cell.isConnected) {
          delete cell.dataset.flash;
          flashing.delete(cell);
        }
      }
      if (flashing.size === 0) {
        clearInterval(sweeper);
        sweeper = undefined;
      }
    }, 100);
  }
}

/** One venue's quote of one symbol: bid / ask (/ mid), age; flashes when bid or ask changes. */
export const PriceCell = memo(function PriceCell({ entry, ageMs, stale, bestBid, bestAsk, showMid }: CellProps) {
  const bidRef = useRef<HTMLDivElement>(null);
  const askRef = useRef<HTMLDivElement>(null);
  const previous = useRef<PriceEntry | undefined>(entry);

  useLayoutEffect(() => {
    const before = previous.current;
    previous.current = entry;
    if (before === undefined || entry === undefined || before === entry) return;
    if (before.bid !== entry.bid) flash(bidRef.current, cmpDecimal(entry.bid, before.bid));
    if (before.ask !== entry.ask) flash(askRef.current, cmpDecimal(entry.ask, before.ask));
  }, [entry]);

  if (entry === undefined) {
    return (
      <div className="cell empty" data-testid="price-cell" data-state="none">
        <span className="muted">—</span>
      </div>
    );
  }
  const title = [
    entry.instrument_id,
    `bid ${entry.bid ?? "—"} × ${entry.bid_size ?? "—"}`,
    `ask ${entry.ask ?? "—"} × ${entry.ask_size ?? "—"}`,
    `price ${entry.price ?? "—"} (${entry.price_source})`,
    entry.crossed ? "CROSSED BOOK (bid ≥ ask): data error" : "",
    entry.exchange_ts_missing ? "venue sent no timestamp" : "",
  ]
    .filter(Boolean)
    .join("\n");
  const classes = ["cell", stale ? "stale" : "", entry.crossed ? "crossed" : ""].filter(Boolean).join(" ");
  return (
    <div className={classes} title={title} data-testid="price-cell" data-venue={entry.venue} data-state={stale ? "stale" : "fresh"}>
      <div ref={bidRef} className={`bid num${bestBid ? " best" : ""}`} data-best={bestBid || undefined}>
        {fmtPrice(entry.bid)}
      </div>
      <div ref={askRef} className={`ask num${bestAsk ? " best" : ""}`} data-best={bestAsk || undefined}>
        {fmtPrice(entry.ask)}
      </div>
      <div className="meta num">
        {showMid && <span className="mid">{fmtPrice(entry.price, 7)}</span>}
        <span className="age">{fmtAge(ageMs)}</span>
      </div>
    </div>
  );
});
