/** REST queries of the funding terminal (api/funding_routes.py), polled: funding moves slowly. */
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";

type S = components["schemas"];
export type FundingTableOut = S["FundingTableOut"];
export type FundingRowOut = FundingTableOut["results"][number];
export type ExchangeFundingOut = FundingRowOut["exchanges_data"][number];
export type PairsOut = S["PairsOut"];
export type PairOut = S["PairOut"];
export type CoinDetailOut = S["CoinDetailOut"];
export type FundingStatsOut = S["FundingStatsOut"];

export type TablePeriod = "1h" | "4h" | "1d" | "3d" | "7d" | "30d";
export type TableSort = "spread" | "apr" | "market_cap" | "volume" | "open_interest" | "symbol";
export type PairPeriod = "now" | "1d" | "3d" | "7d" | "14d" | "30d";
export type PairSide = "ALL" | "LONG" | "SHORT";

export interface TableQuery {
  period: TablePeriod;
  q: string;
  sort: TableSort;
  exchanges: string[];
  /** Liquidity floor, quote currency traded in 24 h (undefined: none). */
  minVolume?: number | undefined;
  /** Open-interest floor, quote notional (undefined: none; a venue that publishes none is then left out). */
  minOpenInterest?: number | undefined;
  page: number;
  pageSize: number;
}

export interface PairsQuery {
  period: PairPeriod;
  q: string;
  side: PairSide;
  exchanges: string[];
  minVolume?: number | undefined;
  minOpenInterest?: number | undefined;
  page: number;
  pageSize: number;
}

const POLL_MS = 5_000;

/** The parameters the funding table and the pairs list share (seed names; empty means "all"). */
function listParams<P>(query: {
  period: P;
  q: string;
  exchanges: string[];
  minVolume?: number | undefined;
  minOpenInterest?: number | undefined;
  page: number;
  pageSize: number;
}) {
  return {
    period: query.period,
    q: query.q || undefined,
    exchanges: query.exchanges.length > 0 ? query.exchanges : undefined,
    min_volume: query.minVolume,
    min_open_interest: query.minOpenInterest,
    page: query.page,
    page_size: query.pageSize,
  };
}

export function useFundingTable(query: TableQuery) {
  return useQuery({
    queryKey: ["funding-table", query],
    queryFn: async () =>
      unwrap(
        await api.GET("/api/funding-table/", {
          params: { query: { ...listParams(query), sort: query.sort } },
        }),
      ),
    refetchInterval: POLL_MS,
    placeholderData: keepPreviousData,
  });
}

export function useBestPairs(query: PairsQuery) {
  return useQuery({
    queryKey: ["best-opportunities", query],
    queryFn: async () =>
      unwrap(
        await api.GET("/api/best-opportunities/", {
          params: { query: { ...listParams(query), side: query.side } },
        }),
      ),
    refetchInterval: POLL_MS,
    placeholderData: keepPreviousData,
  });
}

export function useCoinDetail(symbol: string) {
  return useQuery({
    queryKey: ["coin-detail", symbol],
    queryFn: async () => unwrap(await api.GET("/api/coin-detail/{symbol}/", { params: { path: { symbol } } })),
    refetchInterval: POLL_MS,
  });
}

export function useFundingStats() {
  return useQuery({
    queryKey: ["funding-stats"],
    queryFn: async () => unwrap(await api.GET("/api/stats/")),
    refetchInterval: POLL_MS,
  });
}

export type FundingAlertOut = S["FundingAlertOut"];

export function useFundingAlerts(limit = 20) {
  return useQuery({
    queryKey: ["funding-alerts", limit],
    queryFn: async () => unwrap(await api.GET("/api/funding-alerts", { params: { query: { limit } } })),
    refetchInterval: POLL_MS,
  });
}
