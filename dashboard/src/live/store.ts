/**
 * The live price store: the latest quote per (symbol, venue), fed by the WebSocket (and by REST
 * snapshots on resync), read by components through `useSyncExternalStore`.
 *
 * Built for hundreds of instruments updating several times a second:
 * - writes are cheap (copy-on-write of one symbol's row, no React work);
 * - listeners are keyed (one symbol's row, the symbol list), so an update re-renders only the
 *   rows that changed;
 * - notifications are batched into one flush per animation frame, however many messages
 *   arrived in between (a hidden tab therefore does no rendering work at all).
 */
import type { PriceEntry } from "../api/types";

export type Row = Readonly<Record<string, PriceEntry>>;
type Listener = () => void;

export interface StoreStats {
  /** Price entries applied since the page loaded. */
  updates: number;
  /** Flushes (frames in which something changed). */
  flushes: number;
  /** End-to-end latency samples, ms: ingest receipt time -> the frame after the render (ring buffer). */
  latencies: number[];
  /** Dashboard-only latency samples, ms: WebSocket message applied -> the frame after the render. */
  renderLatencies: number[];
}

const EMPTY_ROW: Row = Object.freeze({});
const SYMBOLS = "symbols";
const LATENCY_SAMPLES = 2048;

export type Scheduler = (flush: () => void) => void;

const frameScheduler: Scheduler = (flush) => {
  if (typeof requestAnimationFrame === "function" && typeof document !== "undefined" && !document.hidden) {
    requestAnimationFrame(() => flush());
  } else {
    setTimeout(flush, 50);
  }
};

export class PriceStore {
  private rows = new Map<string, Row>();
  private symbolList: readonly string[] = [];
  private venueList: readonly string[] = [];
  private listeners = new Map<string, Set<Listener>>();
  private dirty = new Set<string>();
  private scheduled = false;
  private pendingReceipts: number[] = [];
  private pendingArrivals: number[] = [];
  private cursors = new Map<number[], number>();
  /** Server clock minus local clock, ms (estimated from snapshots); ages use server time. */
  clockOffsetMs = 0;
  private offsets: number[] = [];
  readonly stats: StoreStats = { updates: 0, flushes: 0, latencies: [], renderLatencies: [] };

  private lastFlushAt = Number.NEGATIVE_INFINITY;

  /**
   * @param schedule runs a flush (next animation frame by default)
   * @param minFlushIntervalMs at most one render per this interval (0 = every frame)
   */
  constructor(
    private readonly schedule: Scheduler = frameScheduler,
    private readonly minFlushIntervalMs = 0,
  ) {}

  /** Replace everything (initial snapshot, resync). */
  replaceAll(prices: Record<string, Record<string, PriceEntry>>): void {
    const seen = new Set<string>();
    for (const [symbol, venues] of Object.entries(prices)) {
      seen.add(symbol);
      this.rows.set(symbol, { ...venues });
      this.dirty.add(symbol);
    }
    for (const symbol of [...this.rows.keys()]) {
      if (!seen.has(symbol)) {
        this.rows.delete(symbol);
        this.dirty.add(symbol);
      }
    }
    this.rebuildLists();
    this.request();
  }

  /** One quote changed. */
  apply(symbol: string, entry: PriceEntry): void {
    const row = this.rows.get(symbol);
    const previous = row?.[entry.venue];
    // Out-of-order delivery (e.g. a snapshot racing a delta): never go back in time.
    if (previous !== undefined && previous.receipt_timestamp > entry.receipt_timestamp) return;
    this.rows.set(symbol, { ...(row ?? EMPTY_ROW), [entry.venue]: entry });
    this.stats.updates += 1;
    this.pendingReceipts.push(entry.receipt_timestamp);
    this.pendingArrivals.push(performance.now());
    this.dirty.add(symbol);
    if (row === undefined || previous === undefined) this.rebuildLists();
    this.request();
  }

  row(symbol: string): Row {
    return this.rows.get(symbol) ?? EMPTY_ROW;
  }

  symbols(): readonly string[] {
    return this.symbolList;
  }

  venues(): readonly string[] {
    return this.venueList;
  }

  /** Server "now" in ms, for ages. */
  now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  /**
   * Calibrate ages against the server's clock from a time the server stamped on a message it
   * just built. Transit only makes a stamp look older, so the largest recent offset is the best
   * estimate.
   */
  observeServerNow(serverNowMs: number): void {
    if (!Number.isFinite(serverNowMs)) return;
    this.offsets.push(serverNowMs - Date.now());
    if (this.offsets.length > 20) this.offsets.shift();
    this.clockOffsetMs = Math.max(...this.offsets);
  }

  subscribe(key: string, listener: Listener): () => void {
    let set = this.listeners.get(key);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(key, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  subscribeSymbols(listener: Listener): () => void {
    return this.subscribe(SYMBOLS, listener);
  }

  /** Run pending notifications now (tests; also used by the scheduler). */
  flush = (): void => {
    this.scheduled = false;
    if (this.dirty.size === 0) return;
    this.lastFlushAt = performance.now();
    const keys = [...this.dirty];
    this.dirty.clear();
    this.stats.flushes += 1;
    // Latency is taken at the next frame, i.e. once this flush has been rendered and painted.
    const receipts = this.pendingReceipts;
    const arrivals = this.pendingArrivals;
    this.pendingReceipts = [];
    this.pendingArrivals = [];
    if (receipts.length > 0) {
      this.schedule(() => {
        const now = this.now();
        const tick = performance.now();
        for (const receipt of receipts) this.record(this.stats.latencies, now - receipt);
        for (const arrival of arrivals) this.record(this.stats.renderLatencies, tick - arrival);
      });
    }
    for (const key of keys) {
      const set = this.listeners.get(key);
      if (set !== undefined) for (const listener of [...set]) listener();
    }
  };

  private record(samples: number[], ms: number): void {
    if (samples.length < LATENCY_SAMPLES) samples.push(ms);
    else {
      const cursor = this.cursors.get(samples) ?? 0;
      samples[cursor] = ms;
      this.cursors.set(samples, (cursor + 1) % LATENCY_SAMPLES);
    }
  }

  private rebuildLists(): void {
    const symbols = [...this.rows.keys()].sort();
    const venues = new Set<string>();
    for (const row of this.rows.values()) for (const venue of Object.keys(row)) venues.add(venue);
    const venueList = [...venues].sort();
    if (!sameList(symbols, this.symbolList) || !sameList(venueList, this.venueList)) {
      this.symbolList = symbols;
      this.venueList = venueList;
      this.dirty.add(SYMBOLS);
    }
  }

  private request(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = this.lastFlushAt + this.minFlushIntervalMs - performance.now();
    if (wait > 1) setTimeout(() => this.schedule(this.flush), wait);
    else this.schedule(this.flush);
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export function percentile(samples: readonly number[], p: number): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((x, y) => x - y);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? null;
}
