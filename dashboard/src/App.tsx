import { lazy, Suspense } from "react";
import { useHealth, useInfo } from "./api/queries";
import type { InfoOut } from "./api/types";
import { ConnectionIndicator } from "./components/ConnectionIndicator";
import { ErrorBoundary } from "./components/ErrorBoundary";
import { Toasts, useSoundSetting } from "./components/Toasts";
import { BacktestsScreen } from "./features/backtests/BacktestsScreen";
import { FundingScreen } from "./features/funding/FundingScreen";
import { OpportunitiesScreen } from "./features/opportunities/OpportunitiesScreen";
import { PricesScreen } from "./features/prices/PricesScreen";
import { VenuesScreen } from "./features/venues/VenuesScreen";
import { useLive } from "./live/context";
import { useNow } from "./lib/clock";
import { fmtAge } from "./lib/format";
import { href, type Route, useRoute } from "./lib/route";
import { useValue } from "./lib/valueStore";

/** Simulated data is flagged by the API (`demo` in /api/info, from ARBSTREAM_DEMO). */
export function isDemo(info: Pick<InfoOut, "demo"> | undefined): boolean {
  return info?.demo === true;
}

export function DemoBanner() {
  const info = useInfo();
  if (!isDemo(info.data)) return null;
  return (
    <div className="demo-banner" data-testid="demo-banner" role="status">
      DEMO — simulated venues (arbstream simulate). These prices and opportunities are not real.
    </div>
  );
}

function Summary() {
  const live = useLive();
  const summary = useValue(live.summary);
  const health = useHealth();
  const now = useNow() + live.store.clockOffsetMs;
  const lastTick = summary?.last_update_ms ?? null;
  const status = health.data?.status;
  return (
    <div className="summary small num">
      <span>{summary?.total_symbols ?? "—"} symbols</span>
      <span>{summary?.total_exchanges ?? "—"} venues</span>
      <span>{summary?.price_count ?? "—"} quotes</span>
      <span data-testid="open-count">{summary?.open_opportunities ?? "—"} open</span>
      <span title="time since the last tick the API saw">last tick {lastTick === null ? "—" : fmtAge(now - lastTick)}</span>
      <span className={`tag ${status === "ok" ? "ok" : status === undefined ? "muted" : "warn"}`} title={health.data?.reasons?.join("\n")}>
        api {status ?? (health.isError ? "unreachable" : "…")}
      </span>
    </div>
  );
}

// The symbol screen carries the chart library: loaded on first visit only.
const SymbolScreen = lazy(() => import("./features/symbol/SymbolScreen").then((m) => ({ default: m.SymbolScreen })));

const TABS: { route: Route; label: string }[] = [
  { route: { screen: "prices" }, label: "Prices" },
  { route: { screen: "opportunities" }, label: "Opportunities" },
  { route: { screen: "funding" }, label: "Funding" },
  { route: { screen: "venues" }, label: "Venues" },
  { route: { screen: "backtests" }, label: "Backtests" },
];

export function App() {
  const route = useRoute();
  const [sound, setSound] = useSoundSetting();
  return (
    <div className="app">
      <DemoBanner />
      <header>
        <span className="brand">arbstream</span>
        <nav>
          {TABS.map((t) => (
            <a key={t.label} href={href(t.route)} className={route.screen === t.route.screen ? "active" : ""} data-testid={`tab-${t.route.screen}`}>
              {t.label}
            </a>
          ))}
          {route.screen === "symbol" && <a className="active">{route.symbol}</a>}
        </nav>
        <Summary />
        <label className="check small" title="beep on new alerts">
          <input type="checkbox" checked={sound} onChange={(e) => setSound(e.target.checked)} /> sound
        </label>
        <ConnectionIndicator />
      </header>
      <main>
        <ErrorBoundary resetKey={route.screen === "symbol" ? `symbol/${route.symbol}` : route.screen}>
        {route.screen === "prices" && <PricesScreen />}
        {route.screen === "opportunities" && <OpportunitiesScreen />}
        {route.screen === "venues" && <VenuesScreen />}
        {route.screen === "backtests" && <BacktestsScreen />}
        {route.screen === "funding" && <FundingScreen key={route.symbol ?? ""} symbol={route.symbol} />}
        {route.screen === "symbol" && (
          <Suspense fallback={<div className="empty-state">loading…</div>}>
            <SymbolScreen key={route.symbol} symbol={route.symbol} />
          </Suspense>
        )}
        </ErrorBoundary>
      </main>
      <Toasts sound={sound} />
    </div>
  );
}
