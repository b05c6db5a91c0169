import { memo } from "react";
import type { SymbolSpreadRow } from "../../api/types";
import { fmtPct, fmtPrice } from "../../lib/format";

/** Colour thresholds of the net spread, percent (the seed's spread column used 0.1 % and 0.5 %). */
export function spreadLevel(netPct: number): "hot" | "warm" | "pos" | "neg" {
  if (netPct >= 0.5) return "hot";
  if (netPct >= 0.1) return "warm";
  return netPct > 0 ? "pos" : "neg";
}

function legs(row: SymbolSpreadRow): string {
  return [
    `buy ${row.buy_exchange} @ ${row.buy_price} (fee ${fmtPct(String(Number(row.buy_fee) * 100), 3)})`,
    `sell ${row.sell_exchange} @ ${row.sell_price} (fee ${fmtPct(String(Number(row.sell_fee) * 100), 3)})`,
    `gross ${fmtPct(row.spread_percentage, 4)} · net ${fmtPct(row.net_spread_percentage, 4)}`,
    `size ${row.size} · ${row.usable_venues} usable venues (${row.quote_group})`,
  ].join("\n");
}

/**
 * The symbol's cross-venue spread as the API computes it: net % (after both taker fees) and the
 * gross price difference per base unit, buy → sell venue. Memoised on the row object, which the
 * query keeps identical while its values do not change.
 */
export const SpreadCell = memo(function SpreadCell({ row }: { row: SymbolSpreadRow | undefined }) {
  if (row === undefined || row.net_spread_percentage === null) {
    const why = row === undefined ? "no spread yet" : `${row.usable_venues} usable venue(s): no cross-venue pair`;
    return (
      <div className="cell spread empty" data-testid="spread-cell" title={why}>
        <span className="muted">—</span>
      </div>
    );
  }
  return (
    <div className="cell spread" data-testid="spread-cell" data-level={spreadLevel(Number(row.net_spread_percentage))} title={legs(row)}>
      <div className="net">{fmtPct(row.net_spread_percentage, 3)}</div>
      <div className="meta">
        <span>{fmtPrice(row.spread, 6)}</span>
        <span>
          {row.buy_exchange}→{row.sell_exchange}
        </span>
      </div>
    </div>
  );
});
