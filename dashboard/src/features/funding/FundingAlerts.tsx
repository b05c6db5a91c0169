/** The worker's recent funding-rate alerts: a pair's funding episode opened (APR gap net of the amortised
 * entry cost above ARBSTREAM_FUNDING_OPEN_APR) outside the symbol's cooldown. */
import { fmtTime } from "../../lib/format";
import { href } from "../../lib/route";
import { Apr } from "./parts";
import { useFundingAlerts } from "./queries";

export function FundingAlerts() {
  const alerts = useFundingAlerts().data?.alerts ?? [];
  if (alerts.length === 0) return null;
  return (
    <section data-testid="funding-alerts">
      <h2>Recent funding alerts</h2>
      <ul className="small num">
        {alerts.map((a) => (
          <li key={a.event_id} data-testid="funding-alert">
            {fmtTime(a.detected_time)} <a href={href({ screen: "funding", symbol: a.symbol })}>{a.symbol}</a> long {a.long_exchange}{" "}
            <Apr value={a.long_apr} /> / short {a.short_exchange} <Apr value={a.short_apr} />: <Apr value={a.spread_apr} /> a year
            {a.net_apr !== null && a.net_apr !== undefined && (
              <span className="muted" data-testid="funding-alert-net">
                {" "}
                (net of entry <Apr value={a.net_apr} />)
              </span>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
