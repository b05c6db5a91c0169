/** The funding terminal (issue 15): best carry pairs and the funding table, or one coin's detail. */
import { fmtAge } from "../../lib/format";
import { BestPairs } from "./BestPairs";
import { CoinDetail } from "./CoinDetail";
import { FundingAlerts } from "./FundingAlerts";
import { FundingTable } from "./FundingTable";
import { useFundingStats } from "./queries";
import "./funding.css";

function Stats() {
  const stats = useFundingStats().data;
  if (stats === undefined) return null;
  const kept = stats.oldest_settlement === null || stats.oldest_settlement === undefined ? null : Date.now() - stats.oldest_settlement;
  return (
    <p className="small muted num" data-testid="funding-stats">
      {stats.total_coins} coins · {stats.total_exchanges} venues · {stats.settlements} settled rates kept
      {kept !== null && ` (${fmtAge(kept)} of history)`}
      {!stats.history_loaded && " · loading history…"}
    </p>
  );
}

export function FundingScreen({ symbol }: { symbol?: string | undefined }) {
  if (symbol) {
    return (
      <div className="screen funding">
        <CoinDetail symbol={symbol} />
      </div>
    );
  }
  return (
    <div className="screen funding">
      <Stats />
      <BestPairs />
      <FundingAlerts />
      <FundingTable />
    </div>
  );
}
