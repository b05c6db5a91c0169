import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import type { PriceEntry } from "../api/types";
import { createLive, type Live, StaticLiveProvider } from "../live/context";
import { PriceStore } from "../live/store";

/** A live bundle whose store flushes synchronously (no animation frames in tests). */
export function testLive(): Live {
  const live = createLive();
  live.store = new PriceStore((flush) => flush());
  return live;
}

export function renderWithLive(ui: ReactElement, live: Live = testLive()) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false, refetchInterval: false } } });
  const result = render(
    <QueryClientProvider client={client}>
      <StaticLiveProvider live={live}>{ui}</StaticLiveProvider>
    </QueryClientProvider>,
  );
  return { ...result, live, client };
}

let clock = Date.now();

/** A price entry; `bid`/`ask` may be written as decimal text, they go out as JSON numbers like the API's. */
export function entry(venue: string, bid: string | number, ask: string | number, extra: Partial<PriceEntry> = {}): PriceEntry {
  clock += 1;
  return {
    venue,
    instrument_id: `X-USDT-PERP@${venue}`,
    native_symbol: "XUSDT",
    quote_group: "USDT",
    price: (Number(bid) + Number(ask)) / 2,
    price_source: "mid",
    bid: Number(bid),
    ask: Number(ask),
    bid_size: 1,
    ask_size: 1,
    last: null,
    mark: null,
    price_multiplier: 1,
    funding_rate: null,
    crossed: false,
    timestamp: Date.now(),
    exchange_ts_missing: false,
    receipt_timestamp: Date.now(),
    age_ms: 0,
    ...extra,
  } as PriceEntry;
}
