/**
 * The API's WebSocket messages (api/stream.py): `{"type", "seq", "data"}`. The payloads reuse the
 * REST response models, so their types come from the generated OpenAPI schema.
 */
import type {
  ArbitrageRow,
  EpisodeClosedOut,
  OpenEpisodeOut,
  OpportunityOut,
  PriceEntry,
  SummaryOut,
  VenueOut,
} from "../api/types";

export const CHANNELS = ["prices", "arbitrage", "summary", "opportunities", "episodes", "health"] as const;

/** `price_update`: one instrument, fields as a /api/prices entry plus these. */
export type PriceUpdate = PriceEntry & { symbol: string; exchange: string; primary: boolean };

/** `episodes`: one symbol's open episodes (replaces what is held for it; empty = none open). */
export interface OpenEpisodesUpdate {
  symbol: string;
  episodes: OpenEpisodeOut[];
}

/** `snapshot`: the answer to `subscribe`; sections of unsubscribed channels are null. */
export interface Snapshot {
  subscription: {
    channels: string[];
    symbols: string[] | null;
    venues: string[] | null;
    min_net_spread: number | null;
    all_instruments: boolean;
  };
  prices?: Record<string, PriceEntry[]> | null;
  market_summary?: SummaryOut | null;
  /** The top list (what `arbitrage_top` messages then replace). */
  arbitrage_opportunities?: ArbitrageRow[] | null;
  opportunities?: OpenEpisodeOut[] | null;
  recent_alerts?: OpportunityOut[] | null;
  episodes?: EpisodeClosedOut[] | null;
  /** Channel `episodes`: every open episode, what `episodes` messages then update per symbol. */
  open_episodes?: OpenEpisodeOut[] | null;
  venues?: VenueOut[] | null;
}

export type LiveMessage =
  | { type: "snapshot"; seq: number; data: Snapshot }
  | { type: "initial_prices"; seq: number; data: Record<string, Record<string, PriceEntry>> }
  | { type: "price_update"; seq: number; data: PriceUpdate }
  | { type: "market_summary"; seq: number; data: SummaryOut }
  | { type: "arbitrage_top"; seq: number; data: ArbitrageRow[] }
  /** The seed's alert message: the pair that just alerted (the dashboard uses `opportunity`). */
  | { type: "arbitrage_opportunities"; seq: number; data: (ArbitrageRow & { profit: number; event_id: string; cooldown_broken: boolean })[] }
  | { type: "opportunity"; seq: number; data: OpportunityOut }
  | { type: "episode_closed"; seq: number; data: EpisodeClosedOut }
  | { type: "episodes"; seq: number; data: OpenEpisodesUpdate }
  | { type: "venue_health"; seq: number; data: VenueOut }
  | { type: "error"; seq: number; data: { code: string; message: string } }
  | { type: "pong"; seq: number; data: unknown };

/** Symbol -> venue -> entry, from the snapshot's symbol -> instruments lists. */
export function pricesByVenue(prices: Record<string, PriceEntry[]>): Record<string, Record<string, PriceEntry>> {
  const out: Record<string, Record<string, PriceEntry>> = {};
  for (const [symbol, entries] of Object.entries(prices)) {
    const row: Record<string, PriceEntry> = {};
    for (const entry of entries) row[entry.venue] = entry;
    out[symbol] = row;
  }
  return out;
}
