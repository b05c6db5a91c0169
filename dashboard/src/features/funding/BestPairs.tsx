/** Best carry pairs: long the low-funding venue, short the high one, with entry cost and break-even. */
import { useState } from "react";
import { fmtPct, fmtPrice, fmtQty } from "../../lib/format";
import { href } from "../../lib/route";
import { Apr, IntervalBadge, Pager, parseVolume } from "./parts";
import { type PairOut, type PairPeriod, type PairSide, useBestPairs } from "./queries";

const PERIODS: PairPeriod[] = ["now", "1d", "3d", "7d", "14d", "30d"];

export function fmtHours(value: number | string | null | undefined): string {
  if (value === null || value === undefined) return "—";
  const h = Number(value);
  if (!Number.isFinite(h)) return "—";
  return h < 48 ? `${h.toFixed(1)} h` : `${(h / 24).toFixed(1)} d`;
}

export function PairRow({ pair }: { pair: PairOut }) {
  return (
    <tr data-testid="pair-row" data-pair={`${pair.long.exchange}/${pair.short.exchange}`}>
      <td>
        <a href={href({ screen: "funding", symbol: pair.symbol })}>{pair.symbol}</a>
      </td>
      <td title={pair.long.instrument_id}>
        long {pair.long.exchange} <IntervalBadge hours={pair.long.interval_h} /> <Apr value={pair.long.apr} />
      </td>
      <td title={pair.short.instrument_id}>
        short {pair.short.exchange} <IntervalBadge hours={pair.short.interval_h} /> <Apr value={pair.short.apr} />
      </td>
      <td className="r" data-testid="pair-apr">
        <Apr value={pair.apr} />
      </td>
      <td className="r num" title="price spread between the legs + both taker fees">
        {fmtPct(pair.entry_cost, 3)}
      </td>
      <td className="r num" data-testid="pair-break-even">
        {fmtHours(pair.break_even_hours)}
      </td>
      <td className="r num" title={pair.common_settlement_time ? new Date(pair.common_settlement_time).toISOString() : "no common settlement"}>
        {fmtPct(pair.carry_to_common, 4)}
      </td>
      <td className="r num">
        {fmtPrice(pair.long.price)} / {fmtPrice(pair.short.price)}
      </td>
      <td className="r num" data-testid="pair-open-interest" title="open interest of each leg, quote notional (— : the venue publishes none)">
        {fmtQty(pair.long.open_interest)} / {fmtQty(pair.short.open_interest)}
      </td>
    </tr>
  );
}

export function PairsTable({ pairs, testId = "pairs-table" }: { pairs: PairOut[]; testId?: string }) {
  return (
    <div className="table-wrap">
      <table className="data small" data-testid={testId}>
        <thead>
          <tr>
            <th>symbol</th>
            <th>long leg</th>
            <th>short leg</th>
            <th className="r">APR spread</th>
            <th className="r">entry cost</th>
            <th className="r">break-even</th>
            <th className="r">carry to common settlement</th>
            <th className="r">ask / bid</th>
            <th className="r">OI long / short</th>
          </tr>
        </thead>
        <tbody>
          {pairs.map((p) => (
            <PairRow key={`${p.long.instrument_id}|${p.short.instrument_id}`} pair={p} />
          ))}
        </tbody>
      </table>
      {pairs.length === 0 && <div className="empty-state">no pair with a positive carry</div>}
    </div>
  );
}

export function BestPairs() {
  const [period, setPeriod] = useState<PairPeriod>("now");
  const [side, setSide] = useState<PairSide>("ALL");
  const [floor, setFloor] = useState("");
  const [depth, setDepth] = useState("");
  const [page, setPage] = useState(1);
  const pairs = useBestPairs({
    period,
    side,
    q: "",
    exchanges: [],
    minVolume: parseVolume(floor),
    minOpenInterest: parseVolume(depth),
    page,
    pageSize: 10,
  });
  return (
    <section data-testid="best-pairs">
      <h2>Best pairs</h2>
      <div className="toolbar small">
        <label>
          period{" "}
          <select value={period} onChange={(e) => (setPeriod(e.target.value as PairPeriod), setPage(1))} aria-label="pairs period">
            {PERIODS.map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <label>
          side{" "}
          <select value={side} onChange={(e) => (setSide(e.target.value as PairSide), setPage(1))} aria-label="pairs side">
            <option>ALL</option>
            <option>LONG</option>
            <option>SHORT</option>
          </select>
        </label>
        <label title="24 h traded notional per leg, e.g. 5m or 250k">
          min volume <input className="narrow" value={floor} onChange={(e) => (setFloor(e.target.value), setPage(1))} aria-label="min volume" />
        </label>
        <label title="open interest per leg, quote notional, e.g. 1m; a leg whose venue publishes none is left out">
          min OI <input className="narrow" value={depth} onChange={(e) => (setDepth(e.target.value), setPage(1))} aria-label="min open interest" />
        </label>
        {pairs.isError && <span className="warn">{String(pairs.error)}</span>}
      </div>
      <PairsTable pairs={pairs.data?.results ?? []} />
      {pairs.data && <Pager page={pairs.data.current_page} totalPages={pairs.data.total_pages} count={pairs.data.count} onPage={setPage} />}
    </section>
  );
}
