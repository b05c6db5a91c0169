import { useSyncExternalStore } from "react";

/** Hash routes (`#/prices`, `#/symbol/BTC`): work under any static server, no fallback needed. */
export type Route =
  | { screen: "prices" }
  | { screen: "opportunities" }
  | { screen: "venues" }
  | { screen: "backtests" }
  | { screen: "funding"; symbol?: string | undefined }
  | { screen: "symbol"; symbol: string };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  switch (parts[0]) {
    case "opportunities":
      return { screen: "opportunities" };
    case "venues":
      return { screen: "venues" };
    case "backtests":
      return { screen: "backtests" };
    case "funding":
      return parts[1] ? { screen: "funding", symbol: parts[1].toUpperCase() } : { screen: "funding" };
    case "symbol":
      return parts[1] ? { screen: "symbol", symbol: parts[1].toUpperCase() } : { screen: "prices" };
    default:
      return { screen: "prices" };
  }
}

export function href(route: Route): string {
  if (route.screen === "funding" && route.symbol) return `#/funding/${encodeURIComponent(route.symbol)}`;
  return route.screen === "symbol" ? `#/symbol/${encodeURIComponent(route.symbol)}` : `#/${route.screen}`;
}

function subscribe(listener: () => void): () => void {
  window.addEventListener("hashchange", listener);
  return () => window.removeEventListener("hashchange", listener);
}

export function useRoute(): Route {
  const hash = useSyncExternalStore(subscribe, () => window.location.hash);
  return parseRoute(hash);
}
