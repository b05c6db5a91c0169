/**
 * Where the API lives. By default everything is derived from the page's own location (the API
 * serves the built dashboard at `/`; the Vite dev server proxies it), so nothing says
 * "localhost". Overrides, first match wins:
 *   1. query string: `?api=http://host:8000` and/or `?ws=ws://host:8000/ws`
 *   2. `window.ARBSTREAM_CONFIG = { apiBase, wsUrl }` set by a script before the bundle loads
 *   3. build-time env: `VITE_ARBSTREAM_API`, `VITE_ARBSTREAM_WS`
 */
export interface DashboardConfig {
  apiBase: string;
  wsUrl: string;
}

declare global {
  interface Window {
    ARBSTREAM_CONFIG?: Partial<DashboardConfig>;
  }
}

interface LocationLike {
  protocol: string;
  host: string;
  pathname: string;
  search: string;
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

export function wsFromApi(apiBase: string): string {
  return `${trimSlash(apiBase).replace(/^http/, "ws")}/ws`;
}

export function resolveConfig(
  location: LocationLike,
  injected: Partial<DashboardConfig> | undefined,
  env: { api?: string | undefined; ws?: string | undefined } = {},
): DashboardConfig {
  const query = new URLSearchParams(location.search);
  // The page may be served from a sub-path (reverse proxy); the API sits next to index.html.
  const dir = location.pathname.replace(/[^/]*$/, "");
  const fromPage = `${location.protocol}//${location.host}${dir}`;
  const apiBase = trimSlash(query.get("api") ?? injected?.apiBase ?? env.api ?? fromPage);
  const wsUrl = query.get("ws") ?? injected?.wsUrl ?? env.ws ?? wsFromApi(apiBase);
  return { apiBase, wsUrl };
}

export const config: DashboardConfig = resolveConfig(window.location, window.ARBSTREAM_CONFIG, {
  api: import.meta.env.VITE_ARBSTREAM_API as string | undefined,
  ws: import.meta.env.VITE_ARBSTREAM_WS as string | undefined,
});
