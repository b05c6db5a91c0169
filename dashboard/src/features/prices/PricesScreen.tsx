import {
  type ColumnDef,
  type SortingState,
  flexRender,
  getCoreRowModel,
  getFilteredRowModel,
  getSortedRowModel,
  useReactTable,
} from "@tanstack/react-table";
import { useVirtualizer } from "@tanstack/react-virtual";
import { memo, useEffect, useMemo, useRef, useState } from "react";
import { useSpreads } from "../../api/queries";
import type { SymbolSpreadRow } from "../../api/types";
import { useLive } from "../../live/context";
import { usePriceRow, useSymbols, useVenuesQuoted } from "../../live/hooks";
import type { PriceStore } from "../../live/store";
import { useNow } from "../../lib/clock";
import { href } from "../../lib/route";
import { useStaleAfterMs } from "../../lib/staleness";
import { bestVenues } from "./best";
import { PriceCell } from "./PriceCell";
import { SpreadCell } from "./SpreadCell";

interface MatrixRow {
  symbol: string;
  venues: number;
  /** venue -> reference price, sampled for sorting (display order only). */
  prices: Record<string, number | null>;
  /** Net cross-venue spread, percent (from the API), sampled for sorting; undefined = no pair. */
  net: number | undefined;
}

type Spreads = ReadonlyMap<string, SymbolSpreadRow>;
const NO_SPREADS: Spreads = new Map();

const ROW_HEIGHT = 52;
const SPREAD_HELP =
  "sort · best usable bid anywhere − best usable ask anywhere (another venue, same quote group), " +
  "net of both taker fees, from GET /api/spreads (the worker's staleness and fee rules)";
const SORT_SAMPLE_MS = 1_000;

/** The rows' sort keys, re-sampled once a second (and per spreads poll) so rows do not jump on every tick. */
function useSortSample(store: PriceStore, symbols: readonly string[], spreads: Spreads): MatrixRow[] {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setTick((t) => t + 1), SORT_SAMPLE_MS);
    return () => clearInterval(timer);
  }, []);
  return useMemo(() => {
    void tick; // the resample trigger
    return symbols.map((symbol) => {
      const row = store.row(symbol);
      const prices: Record<string, number | null> = {};
      for (const [venue, entry] of Object.entries(row)) prices[venue] = entry.price === null ? null : Number(entry.price);
      const net = spreads.get(symbol)?.net_spread_percentage;
      return { symbol, venues: Object.keys(row).length, prices, net: net == null ? undefined : Number(net) };
    });
  }, [store, symbols, spreads, tick]);
}

const MatrixLine = memo(function MatrixLine({
  symbol,
  venues,
  showMid,
  staleAfterMs,
  offsetMs,
}: {
  symbol: string;
  venues: readonly string[];
  showMid: boolean;
  staleAfterMs: number;
  offsetMs: number;
}) {
  const row = usePriceRow(symbol);
  const now = useNow() + offsetMs;
  const isFresh = (receipt: number) => now - receipt <= staleAfterMs;
  const best = bestVenues(row, venues, (e) => isFresh(e.receipt_timestamp));
  return (
    <>
      {venues.map((venue) => {
        const entry = row[venue];
        const age = entry === undefined ? null : now - entry.receipt_timestamp;
        return (
          <PriceCell
            key={venue}
            entry={entry}
            ageMs={age}
            stale={entry !== undefined && !isFresh(entry.receipt_timestamp)}
            bestBid={best.bid === venue}
            bestAsk={best.ask === venue}
            showMid={showMid}
          />
        );
      })}
    </>
  );
});

export function PricesScreen() {
  const { store } = useLive();
  const symbols = useSymbols();
  const allVenues = useVenuesQuoted();
  const staleAfterMs = useStaleAfterMs();
  const [search, setSearch] = useState("");
  const [hidden, setHidden] = useState<ReadonlySet<string>>(() => new Set());
  const [showMid, setShowMid] = useState(true);
  const [sorting, setSorting] = useState<SortingState>([{ id: "symbol", desc: false }]);
  const spreadsQuery = useSpreads();
  const spreads = useMemo<Spreads>(
    () => (spreadsQuery.data ? new Map(spreadsQuery.data.spreads.map((r) => [r.symbol, r])) : NO_SPREADS),
    [spreadsQuery.data],
  );
  const data = useSortSample(store, symbols, spreads);
  const venues = useMemo(() => allVenues.filter((v) => !hidden.has(v)), [allVenues, hidden]);

  const columns = useMemo<ColumnDef<MatrixRow>[]>(
    () => [
      { id: "symbol", accessorKey: "symbol", header: "Symbol", filterFn: "includesString" },
      { id: "venues", accessorKey: "venues", header: "Venues", enableGlobalFilter: false },
      {
        id: "spread",
        header: "Net spread",
        accessorFn: (r) => r.net,
        sortUndefined: "last",
        enableGlobalFilter: false,
      },
      ...allVenues.map<ColumnDef<MatrixRow>>((venue) => ({
        id: `venue:${venue}`,
        header: venue,
        accessorFn: (r) => r.prices[venue] ?? undefined,
        sortUndefined: "last",
        enableGlobalFilter: false,
      })),
    ],
    [allVenues],
  );
  const columnVisibility = useMemo(
    () => Object.fromEntries(allVenues.map((v) => [`venue:${v}`, !hidden.has(v)])),
    [allVenues, hidden],
  );

  const table = useReactTable({
    data,
    columns,
    state: { sorting, globalFilter: search, columnVisibility },
    onSortingChange: setSorting,
    getRowId: (r) => r.symbol,
    globalFilterFn: (row, _id, value: string) => row.original.symbol.toLowerCase().includes(value.trim().toLowerCase()),
    getCoreRowModel: getCoreRowModel(),
    getSortedRowModel: getSortedRowModel(),
    getFilteredRowModel: getFilteredRowModel(),
  });
  const rows = table.getRowModel().rows;

  const scroller = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 8,
    initialRect: { width: 1200, height: 800 },
  });

  const toggleVenue = (venue: string) =>
    setHidden((h) => {
      const next = new Set(h);
      if (next.has(venue)) next.delete(venue);
      else next.add(venue);
      return next;
    });

  const gridTemplate = `96px 52px 112px repeat(${venues.length}, minmax(100px, 1fr))`;
  const headers = table.getHeaderGroups()[0]?.headers ?? [];

  return (
    <section className="screen prices" data-testid="prices-screen">
      <div className="toolbar">
        <input
          className="search"
          type="search"
          placeholder="Search symbol…"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
          data-testid="price-search"
          aria-label="search symbol"
        />
        <div className="chips" data-testid="venue-filter">
          {allVenues.map((venue) => (
            <button
              type="button"
              key={venue}
              className={`chip${hidden.has(venue) ? " off" : ""}`}
              aria-pressed={!hidden.has(venue)}
              onClick={() => toggleVenue(venue)}
              data-venue={venue}
            >
              {venue}
            </button>
          ))}
          <button type="button" className="chip ghost" onClick={() => setHidden(new Set())}>
            all
          </button>
          <button type="button" className="chip ghost" onClick={() => setHidden(new Set(allVenues))}>
            none
          </button>
        </div>
        <label className="check">
          <input type="checkbox" checked={showMid} onChange={(e) => setShowMid(e.target.checked)} /> mid
        </label>
        <span className="muted small num" data-testid="prices-count">
          {rows.length}/{symbols.length} symbols · {venues.length}/{allVenues.length} venues · stale after{" "}
          {staleAfterMs / 1000}s
        </span>
      </div>
      <div className="matrix" ref={scroller} data-testid="price-matrix">
        <div className="matrix-head" style={{ gridTemplateColumns: gridTemplate }}>
          {headers
            .filter((h) => h.column.getIsVisible())
            .map((header) => {
              const sorted = header.column.getIsSorted();
              return (
                <button
                  type="button"
                  key={header.id}
                  className={`th${sorted ? " sorted" : ""}`}
                  onClick={header.column.getToggleSortingHandler()}
                  title={header.id === "spread" ? SPREAD_HELP : "sort"}
                  data-column={header.id}
                >
                  {flexRender(header.column.columnDef.header, header.getContext())}
                  {sorted === "asc" ? " ▲" : sorted === "desc" ? " ▼" : ""}
                </button>
              );
            })}
        </div>
        {symbols.length === 0 && <div className="empty-state">Waiting for prices…</div>}
        <div style={{ height: virtual.getTotalSize(), position: "relative" }}>
          {virtual.getVirtualItems().map((item) => {
            const row = rows[item.index];
            if (row === undefined) return null;
            const symbol = row.original.symbol;
            return (
              <div
                key={symbol}
                className="matrix-row"
                data-testid="price-row"
                data-symbol={symbol}
                style={{ gridTemplateColumns: gridTemplate, transform: `translateY(${item.start}px)`, height: ROW_HEIGHT }}
              >
                <a className="sym" href={href({ screen: "symbol", symbol })}>
                  {symbol}
                </a>
                <div className="num muted venues-count">{row.original.venues}</div>
                <SpreadCell row={spreads.get(symbol)} />
                <MatrixLine
                  symbol={symbol}
                  venues={venues}
                  showMid={showMid}
                  staleAfterMs={staleAfterMs}
                  offsetMs={store.clockOffsetMs}
                />
              </div>
            );
          })}
        </div>
      </div>
    </section>
  );
}
