import { useSyncExternalStore } from "react";
import { useLive } from "./context";
import type { Row } from "./store";

/** The latest quotes of one symbol, per venue; re-renders only when that symbol changes. */
export function usePriceRow(symbol: string): Row {
  const { store } = useLive();
  return useSyncExternalStore(
    (listener) => store.subscribe(symbol, listener),
    () => store.row(symbol),
  );
}

export function useSymbols(): readonly string[] {
  const { store } = useLive();
  return useSyncExternalStore(
    (listener) => store.subscribeSymbols(listener),
    () => store.symbols(),
  );
}

export function useVenuesQuoted(): readonly string[] {
  const { store } = useLive();
  return useSyncExternalStore(
    (listener) => store.subscribeSymbols(listener),
    () => store.venues(),
  );
}
