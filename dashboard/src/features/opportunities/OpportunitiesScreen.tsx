import type { ColumnDef } from "@tanstack/react-table";
import { useMemo, useState } from "react";
import { type OpportunityFilter, useOpportunities } from "../../api/queries";
import type { ArbitrageRow, OpenEpisodeOut, OpportunityOut } from "../../api/types";
import { DataTable } from "../../components/DataTable";
import { type OpenEpisodesLive, useLive } from "../../live/context";
import { useSymbols, useVenuesQuoted } from "../../live/hooks";
import { useNow } from "../../lib/clock";
import { fmtAge, fmtFractionPct, fmtPct, fmtPrice, fmtQty, fmtTime, nsToMs } from "../../lib/format";
import { href } from "../../lib/route";
import { useValue } from "../../lib/valueStore";

const num = { numeric: true };

function SymbolLink({ symbol }: { symbol: string }) {
  return (
    <a className="sym" href={href({ screen: "symbol", symbol })}>
      {symbol}
    </a>
  );
}

/**
 * The streamed open episodes matching the screen's filters (the same comparisons the API's
 * query parameters make), with `alive_ms` advanced by the time since each symbol's message.
 */
export function liveOpenEpisodes(held: OpenEpisodesLive, filter: OpportunityFilter, now: number): OpenEpisodeOut[] {
  const minNet = filter.minNetPct === undefined ? undefined : filter.minNetPct / 100;
  const rows: OpenEpisodeOut[] = [];
  for (const [symbol, { episodes, receivedAt }] of Object.entries(held.bySymbol)) {
    if (filter.symbol && symbol !== filter.symbol) continue;
    for (const e of episodes) {
      if (filter.venue && e.buy_venue !== filter.venue && e.sell_venue !== filter.venue) continue;
      if (minNet !== undefined && Number(e.last_net_spread) < minNet) continue;
      rows.push({ ...e, alive_ms: e.alive_ms + Math.max(0, now - receivedAt) });
    }
  }
  return rows;
}

function openColumns(elapsedMs: number): ColumnDef<OpenEpisodeOut, unknown>[] {
  return [
    { id: "symbol", header: "Symbol", accessorKey: "symbol", cell: (c) => <SymbolLink symbol={c.row.original.symbol} /> },
    { id: "buy", header: "Buy", accessorKey: "buy_venue" },
    { id: "sell", header: "Sell", accessorKey: "sell_venue" },
    { id: "gross", header: "Gross", meta: num, accessorFn: (r) => Number(r.last.gross_spread), cell: (c) => fmtFractionPct(c.row.original.last.gross_spread) },
    { id: "net", header: "Net", meta: num, accessorFn: (r) => Number(r.last_net_spread), cell: (c) => <b className="pos">{fmtFractionPct(c.row.original.last_net_spread)}</b> },
    { id: "peak", header: "Peak net", meta: num, accessorFn: (r) => Number(r.peak_net_spread), cell: (c) => fmtFractionPct(c.row.original.peak_net_spread) },
    { id: "buy_px", header: "Buy @", meta: num, accessorFn: (r) => Number(r.last.buy.price), cell: (c) => fmtPrice(c.row.original.last.buy.price) },
    { id: "sell_px", header: "Sell @", meta: num, accessorFn: (r) => Number(r.last.sell.price), cell: (c) => fmtPrice(c.row.original.last.sell.price) },
    { id: "size", header: "Size", meta: num, accessorFn: (r) => Number(r.last.size), cell: (c) => fmtQty(c.row.original.last.size) },
    { id: "notional", header: "Notional", meta: num, accessorFn: (r) => Number(r.last.notional), cell: (c) => fmtQty(c.row.original.last.notional) },
    { id: "buy_age", header: "Buy age", meta: num, accessorFn: (r) => r.last.buy.age_ms, cell: (c) => fmtAge(c.row.original.last.buy.age_ms) },
    { id: "sell_age", header: "Sell age", meta: num, accessorFn: (r) => r.last.sell.age_ms, cell: (c) => fmtAge(c.row.original.last.sell.age_ms) },
    { id: "alive", header: "Alive", meta: num, accessorFn: (r) => r.alive_ms, cell: (c) => fmtAge(c.row.original.alive_ms + elapsedMs) },
    { id: "ticks", header: "Ticks", meta: num, accessorKey: "ticks" },
    {
      id: "alerted",
      header: "Alert",
      accessorKey: "alerted",
      cell: (c) => (c.row.original.alerted ? <span className="tag ok">sent</span> : <span className="tag muted">cooldown</span>),
    },
  ];
}

const alertColumns: ColumnDef<OpportunityOut, unknown>[] = [
  { id: "time", header: "Detected", accessorFn: (r) => r.detected_ts_ns, cell: (c) => fmtTime(nsToMs(c.row.original.detected_ts_ns)) },
  { id: "symbol", header: "Symbol", accessorKey: "symbol", cell: (c) => <SymbolLink symbol={c.row.original.symbol} /> },
  { id: "buy", header: "Buy", accessorFn: (r) => r.buy.venue },
  { id: "sell", header: "Sell", accessorFn: (r) => r.sell.venue },
  { id: "gross", header: "Gross", meta: num, accessorFn: (r) => Number(r.gross_spread), cell: (c) => fmtFractionPct(c.row.original.gross_spread) },
  { id: "net", header: "Net", meta: num, accessorFn: (r) => Number(r.net_spread), cell: (c) => <b className="pos">{fmtFractionPct(c.row.original.net_spread)}</b> },
  { id: "size", header: "Size", meta: num, accessorFn: (r) => Number(r.size), cell: (c) => fmtQty(c.row.original.size) },
  { id: "notional", header: "Notional", meta: num, accessorFn: (r) => Number(r.notional), cell: (c) => fmtQty(c.row.original.notional) },
  { id: "buy_age", header: "Buy age", meta: num, accessorFn: (r) => r.buy.age_ms, cell: (c) => fmtAge(c.row.original.buy.age_ms) },
  { id: "sell_age", header: "Sell age", meta: num, accessorFn: (r) => r.sell.age_ms, cell: (c) => fmtAge(c.row.original.sell.age_ms) },
  { id: "skew", header: "Skew", meta: num, accessorKey: "skew_ms", cell: (c) => fmtAge(c.row.original.skew_ms) },
  {
    id: "broken",
    header: "",
    accessorKey: "cooldown_broken",
    cell: (c) => (c.row.original.cooldown_broken ? <span className="tag warn">cooldown broken</span> : null),
  },
];

const topColumns: ColumnDef<ArbitrageRow, unknown>[] = [
  { id: "symbol", header: "Symbol", accessorKey: "symbol", cell: (c) => <SymbolLink symbol={c.row.original.symbol} /> },
  { id: "buy", header: "Buy", accessorKey: "buy_exchange" },
  { id: "sell", header: "Sell", accessorKey: "sell_exchange" },
  { id: "gross", header: "Gross", meta: num, accessorFn: (r) => Number(r.spread_percentage), cell: (c) => fmtPct(c.row.original.spread_percentage) },
  { id: "net", header: "Net", meta: num, accessorFn: (r) => Number(r.net_spread_percentage), cell: (c) => fmtPct(c.row.original.net_spread_percentage) },
  { id: "size", header: "Size", meta: num, accessorFn: (r) => Number(r.size), cell: (c) => fmtQty(c.row.original.size) },
  { id: "profit", header: "Net profit", meta: num, accessorFn: (r) => Number(r.net_profit), cell: (c) => fmtQty(c.row.original.net_profit) },
  { id: "problem", header: "Usable", accessorFn: (r) => r.problem ?? "", cell: (c) => c.row.original.problem ?? (c.row.original.profitable ? "yes" : "") },
];

export function OpportunitiesScreen() {
  const live = useLive();
  const symbols = useSymbols();
  const venues = useVenuesQuoted();
  const top = useValue(live.top);
  const [minNet, setMinNet] = useState("");
  const [symbol, setSymbol] = useState("");
  const [venue, setVenue] = useState("");
  const filter: OpportunityFilter = useMemo(() => {
    const parsed = Number.parseFloat(minNet);
    return { symbol, venue, minNetPct: Number.isFinite(parsed) ? parsed : undefined };
  }, [minNet, symbol, venue]);
  // Open episodes come from the WebSocket (`episodes` channel, also when the cooldown suppressed
  // the alert); REST serves the recent alerts, and the episodes until the socket has sent them.
  const streamed = useValue(live.openEpisodes);
  const query = useOpportunities(filter, streamed.loaded ? 10_000 : 1_000);
  const now = useNow();
  const elapsed = streamed.loaded ? 0 : query.dataUpdatedAt ? Math.max(0, now - query.dataUpdatedAt) : 0;
  const columns = useMemo(() => openColumns(elapsed), [elapsed]);
  const open = useMemo(
    () => (streamed.loaded ? liveOpenEpisodes(streamed, filter, now) : (query.data?.opportunities ?? [])),
    [streamed, filter, now, query.data],
  );
  const alerts = query.data?.recent_alerts ?? [];

  return (
    <section className="screen" data-testid="opportunities-screen">
      <div className="toolbar">
        <label>
          min net %{" "}
          <input
            className="narrow num"
            type="number"
            step="0.01"
            min="0"
            placeholder="any"
            value={minNet}
            onChange={(e) => setMinNet(e.target.value)}
            data-testid="opp-min-net"
          />
        </label>
        <label>
          symbol{" "}
          <select value={symbol} onChange={(e) => setSymbol(e.target.value)} data-testid="opp-symbol">
            <option value="">all</option>
            {symbols.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          venue{" "}
          <select value={venue} onChange={(e) => setVenue(e.target.value)} data-testid="opp-venue">
            <option value="">all</option>
            {venues.map((v) => (
              <option key={v}>{v}</option>
            ))}
          </select>
        </label>
        <span className="muted small">
          {query.isError ? `error: ${String(query.error)}` : `${open.length} open · ${alerts.length} alerts`}
        </span>
      </div>
      <h2>Open episodes</h2>
      <DataTable
        data={open}
        columns={columns}
        rowId={(r) => r.event_id}
        testId="open-episodes"
        empty="No open episode matches."
        initialSort={[{ id: "net", desc: true }]}
        rowAttrs={(r) => ({ "data-symbol": r.symbol, "data-buy": r.buy_venue, "data-sell": r.sell_venue, "data-net": String(r.last_net_spread) })}
      />
      <h2>Recent alerts</h2>
      <DataTable
        data={alerts}
        columns={alertColumns}
        rowId={(r) => r.event_id}
        testId="recent-alerts"
        empty="No alert yet."
        initialSort={[{ id: "time", desc: true }]}
        rowAttrs={(r) => ({ "data-symbol": r.symbol, "data-buy": r.buy.venue, "data-sell": r.sell.venue, "data-net": String(r.net_spread) })}
      />
      <h2>
        Executable spreads now{" "}
        <span className="muted small">(top {top.length} over all symbols and venues, live, positive gross; not filtered)</span>
      </h2>
      <DataTable
        data={top}
        columns={topColumns}
        rowId={(r) => `${r.buy_instrument_id}|${r.sell_instrument_id}`}
        testId="top-spreads"
        empty="No positive spread right now."
        initialSort={[{ id: "net", desc: true }]}
        rowClass={(r) => (r.problem ? "dim" : "")}
      />
    </section>
  );
}
