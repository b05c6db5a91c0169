/**
 * The one live connection of the dashboard: the WebSocket, and the stores its messages feed.
 * Screens read the stores; REST queries are invalidated when an event says they changed.
 */
import { type QueryClient, useQueryClient } from "@tanstack/react-query";
import { createContext, type ReactNode, useContext, useEffect, useMemo } from "react";
import type { ArbitrageRow, OpenEpisodeOut, OpportunityOut, SummaryOut, VenueOut } from "../api/types";
import { valueStore, type ValueStore } from "../lib/valueStore";
import { CHANNELS, type LiveMessage, pricesByVenue } from "./protocol";
import { LiveSocket, type SocketStatus } from "./socket";
import { PriceStore } from "./store";

export interface VenueLive {
  data: VenueOut;
  /** Local time the data arrived: ages shown = ages sent + time since. */
  receivedAt: number;
}

/** Open episodes streamed by the `episodes` channel, per symbol. */
export interface OpenEpisodesLive {
  /** A snapshot with open episodes has arrived: until then screens fall back to REST. */
  loaded: boolean;
  bySymbol: Readonly<Record<string, { episodes: readonly OpenEpisodeOut[]; receivedAt: number }>>;
}

export interface Live {
  store: PriceStore;
  venues: ValueStore<Readonly<Record<string, VenueLive>>>;
  summary: ValueStore<SummaryOut | null>;
  top: ValueStore<readonly ArbitrageRow[]>;
  status: ValueStore<SocketStatus>;
  /** Alerts announced since the page loaded (new ones only, never the snapshot's backlog). */
  alerts: ValueStore<readonly OpportunityOut[]>;
  openEpisodes: ValueStore<OpenEpisodesLive>;
  socket: LiveSocket | null;
}

const LiveContext = createContext<Live | null>(null);

export function useLive(): Live {
  const live = useContext(LiveContext);
  if (live === null) throw new Error("useLive outside <LiveProvider>");
  return live;
}

const INITIAL_STATUS: SocketStatus = {
  state: "connecting",
  seq: 0,
  gaps: 0,
  snapshots: 0,
  connects: 0,
  lastMessageAt: null,
  retryAt: null,
  lastError: null,
};

export function createLive(minFlushIntervalMs = 0): Live {
  return {
    store: new PriceStore(undefined, minFlushIntervalMs),
    venues: valueStore<Readonly<Record<string, VenueLive>>>({}),
    summary: valueStore<SummaryOut | null>(null),
    top: valueStore<readonly ArbitrageRow[]>([]),
    status: valueStore<SocketStatus>(INITIAL_STATUS),
    alerts: valueStore<readonly OpportunityOut[]>([]),
    openEpisodes: valueStore<OpenEpisodesLive>({ loaded: false, bySymbol: {} }),
    socket: null,
  };
}

/** Invalidate a query at most once per interval, however many events ask for it. */
function throttledInvalidate(client: QueryClient, key: string, everyMs: number): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  return () => {
    if (timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      void client.invalidateQueries({ queryKey: [key] });
    }, everyMs);
  };
}

const ALERTS_KEPT = 200;

export function applyMessage(live: Live, message: LiveMessage, invalidate: (key: string) => void, seen: Set<string>): void {
  const now = Date.now();
  switch (message.type) {
    case "snapshot": {
      const snap = message.data;
      if (snap.prices) live.store.replaceAll(pricesByVenue(snap.prices));
      if (snap.market_summary) live.summary.set(snap.market_summary);
      if (snap.arbitrage_opportunities) live.top.set(snap.arbitrage_opportunities);
      if (snap.venues) {
        const venues: Record<string, VenueLive> = {};
        for (const v of snap.venues) venues[v.venue] = { data: v, receivedAt: now };
        live.venues.set(venues);
      }
      if (snap.open_episodes) {
        const bySymbol: Record<string, { episodes: OpenEpisodeOut[]; receivedAt: number }> = {};
        for (const e of snap.open_episodes) (bySymbol[e.symbol] ??= { episodes: [], receivedAt: now }).episodes.push(e);
        live.openEpisodes.set({ loaded: true, bySymbol });
      }
      // Alerts already raised before this snapshot are history, not news.
      for (const alert of snap.recent_alerts ?? []) seen.add(alert.event_id);
      invalidate("opportunities");
      invalidate("episodes");
      return;
    }
    case "initial_prices":
      live.store.replaceAll(message.data);
      return;
    case "price_update":
      if (message.data.primary) live.store.apply(message.data.symbol, message.data);
      return;
    case "market_summary":
      live.summary.set(message.data);
      if (message.data.timestamp) live.store.observeServerNow(Date.parse(message.data.timestamp));
      return;
    case "arbitrage_top":
      live.top.set(message.data);
      return;
    case "arbitrage_opportunities":
      return; // the seed's alert message; alerts are shown from `opportunity`
    case "venue_health":
      live.venues.update((venues) => ({ ...venues, [message.data.venue]: { data: message.data, receivedAt: now } }));
      return;
    case "opportunity":
      if (!seen.has(message.data.event_id)) {
        seen.add(message.data.event_id);
        live.alerts.update((alerts) => [message.data, ...alerts].slice(0, ALERTS_KEPT));
      }
      invalidate("opportunities");
      return;
    case "episodes": {
      const { symbol, episodes } = message.data;
      live.openEpisodes.update((held) => {
        const bySymbol = { ...held.bySymbol };
        if (episodes.length === 0) delete bySymbol[symbol];
        else bySymbol[symbol] = { episodes, receivedAt: now };
        return { ...held, bySymbol };
      });
      return;
    }
    case "episode_closed":
      invalidate("opportunities");
      invalidate("episodes");
      return;
    case "error":
      live.status.update((s) => ({ ...s, lastError: `${message.data.code}: ${message.data.message}` }));
      return;
    default:
      return;
  }
}

export function LiveProvider({ url, children, live: given }: { url: string; children: ReactNode; live?: Live }) {
  const queryClient = useQueryClient();
  const live = useMemo(() => given ?? createLive(), [given]);

  useEffect(() => {
    const throttles = new Map<string, () => void>();
    const invalidate = (key: string) => {
      let fn = throttles.get(key);
      if (fn === undefined) {
        fn = throttledInvalidate(queryClient, key, 250);
        throttles.set(key, fn);
      }
      fn();
    };
    const seen = new Set<string>();
    let lastStatus = live.status.get();
    const socket = new LiveSocket({
      url,
      // One quote per (symbol, venue) — the venue's main contract — is what the matrix shows;
      // the symbol screen lists every instrument from REST.
      subscription: () => ({ channels: [...CHANNELS], all_instruments: false }),
      onMessage: (message) => applyMessage(live, message as LiveMessage, invalidate, seen),
      onStatus: (status) => {
        // seq and lastMessageAt change on every message: publish only what the indicator shows
        // as a state change; the indicator samples the rest on its own clock.
        const changed =
          status.state !== lastStatus.state ||
          status.gaps !== lastStatus.gaps ||
          status.snapshots !== lastStatus.snapshots ||
          status.connects !== lastStatus.connects ||
          status.retryAt !== lastStatus.retryAt ||
          status.lastError !== lastStatus.lastError;
        lastStatus = status;
        if (changed) live.status.set(status);
      },
    });
    live.socket = socket;
    socket.start();
    return () => {
      socket.stop();
      live.socket = null;
    };
  }, [url, live, queryClient]);

  return <LiveContext.Provider value={live}>{children}</LiveContext.Provider>;
}

/** The stores without a socket: component tests, and screens rendered from fixed data. */
export function StaticLiveProvider({ live, children }: { live: Live; children: ReactNode }) {
  return <LiveContext.Provider value={live}>{children}</LiveContext.Provider>;
}
