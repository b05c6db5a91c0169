import { useSyncExternalStore } from "react";

/**
 * One shared wall clock for every "age" on screen: a single timer however many cells show an
 * age, ticking only while something listens.
 */
const listeners = new Set<() => void>();
let now = Date.now();
let timer: ReturnType<typeof setInterval> | undefined;
const PERIOD_MS = 500;

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  if (timer === undefined) {
    timer = setInterval(() => {
      now = Date.now();
      for (const l of [...listeners]) l();
    }, PERIOD_MS);
  }
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  };
}

/** Local wall-clock ms, refreshed twice a second. */
export function useNow(): number {
  return useSyncExternalStore(subscribe, () => now);
}
