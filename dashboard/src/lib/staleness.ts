import { useInfo } from "../api/queries";

/** Default of the worker's ARBSTREAM_MAX_QUOTE_AGE_MS, used only while the API does not say. */
export const DEFAULT_STALE_AFTER_MS = 3_000;

/**
 * How old a quote may be before it is greyed: the API's `max_quote_age_ms` (the worker's own
 * usability limit, /api/info) when it reports one, else the documented default.
 */
export function useStaleAfterMs(): number {
  const info = useInfo();
  const reported = (info.data as { max_quote_age_ms?: unknown } | undefined)?.max_quote_age_ms;
  return typeof reported === "number" && reported > 0 ? reported : DEFAULT_STALE_AFTER_MS;
}
