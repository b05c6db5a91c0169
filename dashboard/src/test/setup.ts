import { cleanup } from "@testing-library/react";
import { afterEach, vi } from "vitest";

/**
 * A fake API for component tests: `apiRoutes.set("/api/info", (url) => body)`; every request is
 * recorded in `apiCalls`. openapi-fetch captures `fetch` when the client is created, so it is
 * installed here, before any test module imports the client.
 */
export const apiRoutes = new Map<string, (url: URL) => unknown>();
export const apiCalls: URL[] = [];

const fakeFetch = vi.fn(async (input: RequestInfo | URL) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  apiCalls.push(url);
  const handler = apiRoutes.get(url.pathname);
  if (handler === undefined) {
    return new Response(JSON.stringify({ detail: "not found" }), { status: 404, headers: { "content-type": "application/json" } });
  }
  return new Response(JSON.stringify(handler(url)), { status: 200, headers: { "content-type": "application/json" } });
});
globalThis.fetch = fakeFetch as unknown as typeof fetch;

// jsdom does no layout: give elements a viewport-sized box so the virtualised matrix renders rows.
Object.defineProperties(HTMLElement.prototype, {
  offsetHeight: { configurable: true, get: () => 800 },
  offsetWidth: { configurable: true, get: () => 1200 },
  clientHeight: { configurable: true, get: () => 800 },
  clientWidth: { configurable: true, get: () => 1200 },
});

afterEach(() => {
  cleanup();
  apiRoutes.clear();
  apiCalls.length = 0;
});
