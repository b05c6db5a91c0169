/** The funding table: per symbol, each venue's rate, interval, APR now and realised, next funding, volume, open interest. */
import { useState } from "react";
import { useNow } from "../../lib/clock";
import { fmtPct, fmtPrice, fmtQty } from "../../lib/format";
import { href } from "../../lib/route";
import { Apr, CapBadge, Countdown, IntervalBadge, Pager, Sparkline } from "./parts";
import { type ExchangeFundingOut, type FundingRowOut, type TablePeriod, type TableSort, useFundingTable } from "./queries";

const PERIODS: TablePeriod[] = ["1h", "4h", "1d", "3d", "7d", "30d"];
const SORTS: { value: TableSort; label: string }[] = [
  { value: "spread", label: "realised APR spread" },
  { value: "apr", label: "largest |APR|" },
  { value: "volume", label: "24 h volume" },
  { value: "open_interest", label: "open interest" },
  { value: "symbol", label: "symbol" },
];

function VenueRow({ row, entry, first, now }: { row: Omit<FundingRowOut, "asset_info">; entry: ExchangeFundingOut; first: boolean; now: number }) {
  const avg = entry.averages;
  return (
    <tr className={entry.healthy ? "" : "dim"} data-testid="funding-venue-row" data-venue={entry.exchange}>
      {first && (
        <td className="sym-cell" rowSpan={row.exchanges_data.length}>
          <a href={href({ screen: "funding", symbol: row.symbol })}>{row.symbol}</a>
          <div className="small muted num" title="max - min realised APR in the row (live in brackets)">
            {fmtPct(row.spread, 2)} ({fmtPct(row.live_spread, 2)})
          </div>
        </td>
      )}
      <td title={entry.instrument_id}>
        {entry.exchange}
        {!entry.healthy && <span className="tag bad">down</span>}
      </td>
      <td>
        <IntervalBadge hours={entry.interval_h} />
      </td>
      <td className="r num" title="rate per interval">
        {fmtPct(entry.rate === null || entry.rate === undefined ? null : Number(entry.rate) * 100, 4)}
        <CapBadge atCap={entry.at_cap} cap={entry.cap} floor={entry.floor} />
      </td>
      <td className="r">
        <Apr value={entry.live_apr} />
      </td>
      <td className="r">
        <Apr value={entry.hist_apr} />
      </td>
      <td className="r">
        <Apr value={avg["1d"]} />
      </td>
      <td className="r">
        <Apr value={avg["7d"]} />
      </td>
      <td className="r">
        <Apr value={avg["30d"]} />
      </td>
      <td>
        <Sparkline values={entry.history} />
      </td>
      <td className="r">
        <Countdown at={entry.next_funding_time} now={now} estimated={entry.next_funding_estimated} />
      </td>
      <td className="r num">{fmtQty(entry.volume)}</td>
      <td className="r num" data-testid="open-interest" title="open interest, quote notional (— : the venue publishes none)">
        {fmtQty(entry.open_interest)}
      </td>
      <td className="r num">{fmtPrice(entry.price)}</td>
    </tr>
  );
}

export function FundingTable() {
  const [period, setPeriod] = useState<TablePeriod>("1d");
  const [sort, setSort] = useState<TableSort>("spread");
  const [q, setQ] = useState("");
  const [page, setPage] = useState(1);
  const table = useFundingTable({ period, sort, q, exchanges: [], page, pageSize: 20 });
  const now = useNow();
  const rows = table.data?.results ?? [];
  return (
    <section data-testid="funding-table">
      <h2>Funding table</h2>
      <div className="toolbar small">
        <input className="search" placeholder="symbol" value={q} onChange={(e) => (setQ(e.target.value), setPage(1))} aria-label="search symbol" />
        <label>
          period{" "}
          <select value={period} onChange={(e) => (setPeriod(e.target.value as TablePeriod), setPage(1))} aria-label="table period">
            {PERIODS.map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <label>
          sort{" "}
          <select value={sort} onChange={(e) => (setSort(e.target.value as TableSort), setPage(1))} aria-label="table sort">
            {SORTS.map((s) => (
              <option key={s.value} value={s.value}>
                {s.label}
              </option>
            ))}
          </select>
        </label>
        {table.isError && <span className="warn">{String(table.error)}</span>}
      </div>
      <div className="table-wrap">
        <table className="data small">
          <thead>
            <tr>
              <th>symbol</th>
              <th>venue</th>
              <th>interval</th>
              <th className="r">rate</th>
              <th className="r">APR now</th>
              <th className="r">APR {period}</th>
              <th className="r">1d</th>
              <th className="r">7d</th>
              <th className="r">30d</th>
              <th>history</th>
              <th className="r">next funding</th>
              <th className="r">24h volume</th>
              <th className="r">open interest</th>
              <th className="r">price</th>
            </tr>
          </thead>
          <tbody>
            {rows.flatMap((row) =>
              row.exchanges_data.map((entry, i) => <VenueRow key={entry.instrument_id} row={row} entry={entry} first={i === 0} now={now} />),
            )}
          </tbody>
        </table>
        {rows.length === 0 && !table.isLoading && <div className="empty-state">no funding rates yet</div>}
      </div>
      {table.data && <Pager page={table.data.current_page} totalPages={table.data.total_pages} count={table.data.count} onPage={setPage} />}
    </section>
  );
}
