import type { PriceEntry } from "../../api/types";

export interface Best {
  bid: string | null;
  ask: string | null;
}

/**
 * Which shown venue has the highest bid and which the lowest ask, for highlighting only. Prices
 * from the API are already per one base unit, so they compare directly; crossed books and stale
 * quotes (as the API / age threshold mark them) never win. Ties go to the first venue in order.
 */
export function bestVenues(row: Readonly<Record<string, PriceEntry>>, venues: readonly string[], usable: (e: PriceEntry) => boolean): Best {
  let bid: string | null = null;
  let ask: string | null = null;
  let bidValue = Number.NEGATIVE_INFINITY;
  let askValue = Number.POSITIVE_INFINITY;
  let usableCount = 0;
  for (const venue of venues) {
    const entry = row[venue];
    if (entry === undefined || entry.crossed || !usable(entry)) continue;
    usableCount += 1;
    const b = entry.bid === null ? Number.NaN : Number(entry.bid);
    const a = entry.ask === null ? Number.NaN : Number(entry.ask);
    if (b > bidValue) {
      bidValue = b;
      bid = venue;
    }
    if (a < askValue) {
      askValue = a;
      ask = venue;
    }
  }
  // With a single venue "best" says nothing.
  return usableCount >= 2 ? { bid, ask } : { bid: null, ask: null };
}
