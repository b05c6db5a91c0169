/**
 * REST snapshots through TanStack Query. Polling keeps ages and open episodes current; the
 * WebSocket invalidates the same keys the moment an event says they changed.
 */
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api, unwrap } from "./client";

export function useInfo() {
  return useQuery({
    queryKey: ["info"],
    queryFn: async () => unwrap(await api.GET("/api/info")),
    refetchInterval: 30_000,
  });
}

export function useHealth() {
  return useQuery({
    queryKey: ["health"],
    queryFn: async () => {
      const result = await api.GET("/health");
      // 503 while the read model loads still carries the health body ("starting").
      if (result.response.status === 503 && result.error !== undefined) return result.error;
      return unwrap(result);
    },
    refetchInterval: 5_000,
  });
}

export function useVenuesSnapshot() {
  return useQuery({
    queryKey: ["venues"],
    queryFn: async () => unwrap(await api.GET("/api/venues")),
    refetchInterval: 5_000,
  });
}

export interface OpportunityFilter {
  symbol?: string | undefined;
  venue?: string | undefined;
  /** Percent, as typed by the user (0.15 = 0.15 %). */
  minNetPct?: number | undefined;
}

/** `refetchIntervalMs`: 1 s by default; a slow fallback where the WebSocket streams open episodes. */
export function useOpportunities(filter: OpportunityFilter, refetchIntervalMs = 1_000) {
  return useQuery({
    queryKey: ["opportunities", filter],
    queryFn: async () =>
      unwrap(
        await api.GET("/api/opportunities", {
          params: {
            query: {
              symbol: filter.symbol || undefined,
              venue: filter.venue || undefined,
              min_net_spread: filter.minNetPct === undefined ? undefined : filter.minNetPct / 100,
              limit: 200,
            },
          },
        }),
      ),
    refetchInterval: refetchIntervalMs,
    placeholderData: keepPreviousData,
  });
}

export function useEpisodes(symbol: string | undefined, limit = 50) {
  return useQuery({
    queryKey: ["episodes", symbol, limit],
    queryFn: async () =>
      unwrap(await api.GET("/api/episodes", { params: { query: { symbol: symbol || undefined, limit } } })),
    refetchInterval: 5_000,
    placeholderData: keepPreviousData,
  });
}

export function useSymbolPrices(symbol: string) {
  return useQuery({
    queryKey: ["symbol-prices", symbol],
    queryFn: async () => unwrap(await api.GET("/api/prices/{symbol}", { params: { path: { symbol } } })),
    // Non-main contracts are not streamed (the socket carries one per venue): poll them.
    refetchInterval: 1_000,
    retry: (count, error) => count < 2 && !("status" in error && error.status === 404),
  });
}

export function useSpread(symbol: string, ex1: string, ex2: string) {
  return useQuery({
    queryKey: ["spread", symbol, ex1, ex2],
    queryFn: async () =>
      unwrap(await api.GET("/api/spread/{symbol}/{ex1}/{ex2}", { params: { path: { symbol, ex1, ex2 } } })),
    enabled: ex1 !== "" && ex2 !== "" && ex1 !== ex2,
    refetchInterval: 1_000,
    retry: false,
  });
}

/** The API's recorded spread samples of the pair (last `seconds`), loaded once per pair. */
export function useSpreadHistory(symbol: string, ex1: string, ex2: string, seconds = 600) {
  return useQuery({
    queryKey: ["spread-history", symbol, ex1, ex2, seconds],
    queryFn: async () =>
      unwrap(
        await api.GET("/api/spread/{symbol}/{ex1}/{ex2}/history", {
          params: { path: { symbol, ex1, ex2 }, query: { seconds } },
        }),
      ),
    enabled: ex1 !== "" && ex2 !== "" && ex1 !== ex2,
    staleTime: Number.POSITIVE_INFINITY,
    gcTime: 0,
    refetchInterval: false,
    refetchOnWindowFocus: false,
    retry: false,
  });
}

/**
 * Cross-venue spread per symbol (best usable bid anywhere vs best usable ask anywhere, net of fees), as
 * the API computes it with the worker's rules. Polled: usability moves with the clock (staleness) as
 * well as with quotes. Structural sharing keeps unchanged rows the same objects, so memoised cells
 * skip them.
 */
export function useSpreads(refetchIntervalMs = 1_000) {
  return useQuery({
    queryKey: ["spreads"],
    queryFn: async () => unwrap(await api.GET("/api/spreads")),
    refetchInterval: refetchIntervalMs,
    placeholderData: keepPreviousData,
  });
}

export function useAlertStatus(symbol: string) {
  return useQuery({
    queryKey: ["alert-status", symbol],
    queryFn: async () =>
      unwrap(await api.GET("/api/arbitrage/{symbol}/alert-status", { params: { path: { symbol } } })),
    refetchInterval: 1_000,
  });
}
