import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { config } from "./config";
import { installPerfProbe } from "./lib/perf";
import { createLive, LiveProvider } from "./live/context";
import "./styles.css";

const queryClient = new QueryClient({
  defaultOptions: { queries: { staleTime: 500, refetchOnWindowFocus: false, retry: 1 } },
});
// Price re-renders are batched: at most one per `render_ms` (default 50 ms = 20/s; the API itself
// coalesces each instrument to 10 updates/s). `?render_ms=0` renders on every animation frame.
const renderMs = Number(new URLSearchParams(window.location.search).get("render_ms") ?? "50");
const live = createLive(Number.isFinite(renderMs) && renderMs >= 0 ? renderMs : 50);
installPerfProbe(live);

const root = document.getElementById("root");
if (root === null) throw new Error("#root missing");
createRoot(root).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <LiveProvider url={config.wsUrl} live={live}>
        <App />
      </LiveProvider>
    </QueryClientProvider>
  </StrictMode>,
);
