import type { ColumnDef } from "@tanstack/react-table";
import { useEffect, useMemo, useState } from "react";
import { useAlertStatus, useEpisodes, useOpportunities, useSpread, useSpreadHistory, useSymbolPrices } from "../../api/queries";
import type { EpisodeClosedOut, OpenEpisodeOut, PriceEntry } from "../../api/types";
import { DataTable } from "../../components/DataTable";
import { useLive } from "../../live/context";
import { usePriceRow } from "../../live/hooks";
import { useNow } from "../../lib/clock";
import { fmtAge, fmtFractionPct, fmtPct, fmtPrice, fmtQty, fmtTime, nsToMs } from "../../lib/format";
import { href } from "../../lib/route";
import { useStaleAfterMs } from "../../lib/staleness";
import { historyPoints, SpreadChart, type SpreadPoint, spreadPoint, withHistory } from "./SpreadChart";

const num = { numeric: true };
const MAX_POINTS = 3_600;

function quoteColumns(now: number, staleAfterMs: number): ColumnDef<PriceEntry, unknown>[] {
  return [
    { id: "venue", header: "Venue", accessorKey: "venue" },
    { id: "instrument", header: "Instrument", accessorKey: "native_symbol", cell: (c) => <span title={c.row.original.instrument_id}>{c.row.original.native_symbol}</span> },
    { id: "group", header: "Group", accessorKey: "quote_group" },
    { id: "bid", header: "Bid", meta: num, accessorFn: (r) => Number(r.bid), cell: (c) => <span className="bid">{fmtPrice(c.row.original.bid)}</span> },
    { id: "bid_size", header: "Bid size", meta: num, accessorFn: (r) => Number(r.bid_size), cell: (c) => fmtQty(c.row.original.bid_size) },
    { id: "ask", header: "Ask", meta: num, accessorFn: (r) => Number(r.ask), cell: (c) => <span className="ask">{fmtPrice(c.row.original.ask)}</span> },
    { id: "ask_size", header: "Ask size", meta: num, accessorFn: (r) => Number(r.ask_size), cell: (c) => fmtQty(c.row.original.ask_size) },
    { id: "price", header: "Price", meta: num, accessorFn: (r) => Number(r.price), cell: (c) => `${fmtPrice(c.row.original.price)} ${c.row.original.price_source === "mid" ? "" : `(${c.row.original.price_source})`}` },
    { id: "funding", header: "Funding", meta: num, accessorFn: (r) => Number(r.funding_rate), cell: (c) => fmtFractionPct(c.row.original.funding_rate, 4) },
    {
      id: "age",
      header: "Age",
      meta: num,
      accessorFn: (r) => now - r.receipt_timestamp,
      cell: (c) => {
        const age = now - c.row.original.receipt_timestamp;
        return <span className={age > staleAfterMs ? "stale-text" : ""}>{fmtAge(age)}</span>;
      },
    },
    { id: "flags", header: "", accessorFn: (r) => (r.crossed ? "crossed" : ""), cell: (c) => (c.row.original.crossed ? <span className="tag bad">crossed</span> : null) },
  ];
}

const closedColumns: ColumnDef<EpisodeClosedOut, unknown>[] = [
  { id: "start", header: "Start", accessorKey: "start_ts_ns", cell: (c) => fmtTime(nsToMs(c.row.original.start_ts_ns)) },
  { id: "buy", header: "Buy", accessorKey: "buy_venue" },
  { id: "sell", header: "Sell", accessorKey: "sell_venue" },
  { id: "duration", header: "Duration", meta: num, accessorKey: "duration_ms", cell: (c) => fmtAge(c.row.original.duration_ms) },
  { id: "peak", header: "Peak net", meta: num, accessorFn: (r) => Number(r.peak_net_spread), cell: (c) => fmtFractionPct(c.row.original.peak_net_spread) },
  { id: "avg", header: "Avg net", meta: num, accessorFn: (r) => Number(r.avg_net_spread), cell: (c) => fmtFractionPct(c.row.original.avg_net_spread) },
  { id: "ticks", header: "Ticks", meta: num, accessorKey: "ticks" },
  { id: "reason", header: "Closed by", accessorKey: "close_reason" },
  { id: "alerted", header: "Alert", accessorKey: "alerted", cell: (c) => (c.row.original.alerted ? "sent" : "—") },
];

const openColumns: ColumnDef<OpenEpisodeOut, unknown>[] = [
  { id: "start", header: "Start", accessorKey: "start_ts_ns", cell: (c) => fmtTime(nsToMs(c.row.original.start_ts_ns)) },
  { id: "buy", header: "Buy", accessorKey: "buy_venue" },
  { id: "sell", header: "Sell", accessorKey: "sell_venue" },
  { id: "alive", header: "Alive", meta: num, accessorKey: "alive_ms", cell: (c) => fmtAge(c.row.original.alive_ms) },
  { id: "net", header: "Net now", meta: num, accessorFn: (r) => Number(r.last_net_spread), cell: (c) => fmtFractionPct(c.row.original.last_net_spread) },
  { id: "peak", header: "Peak net", meta: num, accessorFn: (r) => Number(r.peak_net_spread), cell: (c) => fmtFractionPct(c.row.original.peak_net_spread) },
  { id: "alerted", header: "Alert", accessorKey: "alerted", cell: (c) => (c.row.original.alerted ? "sent" : "cooldown") },
];

function Cooldown({ symbol }: { symbol: string }) {
  const status = useAlertStatus(symbol);
  const now = useNow();
  if (status.isError) return <div className="card">cooldown: {String(status.error)}</div>;
  const s = status.data;
  if (s === undefined) return <div className="card muted">cooldown…</div>;
  const left = Math.max(0, s.seconds_until_next_alert * 1000 - (status.dataUpdatedAt ? now - status.dataUpdatedAt : 0));
  return (
    <div className="card" data-testid="cooldown" data-can-alert={s.can_send_alert}>
      <div className="card-title">Alert cooldown</div>
      <div className="big">
        {s.can_send_alert ? <span className="tag ok">ready to alert</span> : <span className="tag warn">cooling down {fmtAge(left)}</span>}
      </div>
      <div className="small muted num">
        cooldown {s.cooldown_seconds}s · break ×{s.cooldown_break_ratio} · last alert{" "}
        {s.last_alert_timestamp_ms ? `${fmtTime(s.last_alert_timestamp_ms)} at ${fmtFractionPct(s.last_alert_net_spread)}` : "never"}
      </div>
    </div>
  );
}

export function SymbolScreen({ symbol }: { symbol: string }) {
  const { store } = useLive();
  const live = usePriceRow(symbol);
  const rest = useSymbolPrices(symbol);
  const now = useNow() + store.clockOffsetMs;
  const staleAfterMs = useStaleAfterMs();
  const venues = useMemo(() => Object.keys(live).sort(), [live]);
  const [pair, setPair] = useState<[string, string]>(["", ""]);
  const [points, setPoints] = useState<SpreadPoint[]>([]);

  useEffect(() => {
    // Default pair: the first two venues quoting the symbol.
    if ((pair[0] === "" || pair[1] === "") && venues.length >= 2) setPair([venues[0] ?? "", venues[1] ?? ""]);
  }, [venues, pair]);
  useEffect(() => setPoints([]), [symbol, pair]);

  // The API's recorded history of the pair first, then one live sample a second. Both are
  // stamped with the API's clock (history ts_ns, the spread response's timestamp).
  const history = useSpreadHistory(symbol, pair[0], pair[1]);
  useEffect(() => {
    if (history.data === undefined) return;
    const recorded = historyPoints(history.data);
    setPoints((ps) => withHistory(recorded, ps, MAX_POINTS));
  }, [history.data]);

  const spread = useSpread(symbol, pair[0], pair[1]);
  useEffect(() => {
    if (spread.data === undefined) return;
    const serverMs = spread.data.timestamp; // Unix ms, the seed's unit on /api/spread
    const point = spreadPoint(spread.data, Number.isFinite(serverMs) ? serverMs : spread.dataUpdatedAt);
    setPoints((ps) => {
      const last = ps[ps.length - 1];
      if (last !== undefined && last.time >= point.time) return [...ps.slice(0, -1), { ...point, time: last.time }];
      return [...ps, point].slice(-MAX_POINTS);
    });
  }, [spread.data, spread.dataUpdatedAt]);

  // Every instrument from REST, with the live stream's newer quote where it has one.
  const quotes = useMemo(() => {
    const instruments = rest.data?.instruments ?? Object.values(live);
    return instruments.map((entry) => {
      const fresher = live[entry.venue];
      return fresher !== undefined && fresher.instrument_id === entry.instrument_id && fresher.receipt_timestamp >= entry.receipt_timestamp
        ? fresher
        : entry;
    });
  }, [rest.data, live]);
  const columns = useMemo(() => quoteColumns(now, staleAfterMs), [now, staleAfterMs]);
  const opened = useOpportunities({ symbol });
  const closed = useEpisodes(symbol);
  const notFound = rest.isError && "status" in rest.error && rest.error.status === 404;

  return (
    <section className="screen" data-testid="symbol-screen" data-symbol={symbol}>
      <div className="toolbar">
        <a href={href({ screen: "prices" })}>← prices</a>
        <h1>{symbol}</h1>
        {notFound && <span className="tag bad">unknown symbol</span>}
      </div>
      <div className="grid-2">
        <div>
          <h2>Quotes per venue</h2>
          <DataTable
            data={quotes}
            columns={columns}
            rowId={(r) => r.instrument_id}
            testId="symbol-quotes"
            empty="No quote yet."
            initialSort={[{ id: "venue", desc: false }]}
            rowClass={(r) => (now - r.receipt_timestamp > staleAfterMs ? "dim" : "")}
          />
        </div>
        <div className="side">
          <Cooldown symbol={symbol} />
          <div className="card">
            <div className="card-title">
              Spread{" "}
              <select value={pair[0]} onChange={(e) => setPair([e.target.value, pair[1]])} data-testid="spread-venue-1">
                {venues.map((v) => (
                  <option key={v}>{v}</option>
                ))}
              </select>{" "}
              vs{" "}
              <select value={pair[1]} onChange={(e) => setPair([pair[0], e.target.value])} data-testid="spread-venue-2">
                {venues.map((v) => (
                  <option key={v}>{v}</option>
                ))}
              </select>
            </div>
            {spread.data && (
              <div className="small num">
                {fmtPrice(spread.data.price1)} / {fmtPrice(spread.data.price2)} · mid spread {fmtPct(spread.data.price_difference_percentage)} · net{" "}
                {fmtPct(spread.data.buy_1_sell_2?.net_spread_percentage)} / {fmtPct(spread.data.buy_2_sell_1?.net_spread_percentage)}
              </div>
            )}
            {spread.isError && <div className="small muted">{String(spread.error)}</div>}
            <SpreadChart points={points} labels={pair} />
            <div className="small muted">
              {history.data ? `${history.data.points.length} recorded samples, then ` : ""}sampled from /api/spread once a second
            </div>
          </div>
        </div>
      </div>
      <h2>Open episodes</h2>
      <DataTable
        data={opened.data?.opportunities ?? []}
        columns={openColumns}
        rowId={(r) => r.event_id}
        testId="symbol-open-episodes"
        empty="None open."
        initialSort={[{ id: "net", desc: true }]}
      />
      <h2>
        Episode history <span className="muted small">{closed.data ? `${closed.data.total} closed` : ""}</span>
      </h2>
      <DataTable
        data={closed.data?.episodes ?? []}
        columns={closedColumns}
        rowId={(r) => r.event_id}
        testId="symbol-episodes"
        empty="No closed episode yet."
        initialSort={[{ id: "start", desc: true }]}
      />
    </section>
  );
}
