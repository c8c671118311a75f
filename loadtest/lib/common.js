// Shared by every scenario: the guide's stages (shortened), thresholds, the "hold" metrics and the
// JSON summary. Each scenario is its own k6 run so its numbers are about one endpoint only.
//
// Environment (k6 -e NAME=value or exported variables):
//   BASE_URL      server root, default http://127.0.0.1:8000
//   API_KEY       sent as X-API-Key
//   VUS           virtual users at the plateau, default 32
//   RAMP, HOLD, DOWN   stage durations (k6 syntax: 10s, 1m), default 10s / 35s / 5s
//   ACCEPT_ENCODING    default "gzip, deflate, br" as a browser sends; "" sends none
//   SUMMARY_PATH  where handleSummary writes the JSON summary (default: no file)
//   SLEEP         seconds each VU waits after a request (the guide's script: 1); default 0
//
// By default there is no sleep between requests: every VU sends its next request as soon as the
// last one is answered, so the run measures throughput at a fixed concurrency (and latency is
// mostly queueing: p50 ≈ VUs / req/s). SLEEP=1 paces the VUs as the guide's script does, so the
// latency is the service time at a light load.
import exec from 'k6/execution';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');
export const API_KEY = __ENV.API_KEY || '';
const VUS = parseInt(__ENV.VUS || '32', 10);
const RAMP = __ENV.RAMP || '10s';
const HOLD = __ENV.HOLD || '35s';
const DOWN = __ENV.DOWN || '5s';
const ACCEPT_ENCODING = __ENV.ACCEPT_ENCODING === undefined ? 'gzip, deflate, br' : __ENV.ACCEPT_ENCODING;
const SLEEP = parseFloat(__ENV.SLEEP || '0');

function millis(text) {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let match;
  while ((match = re.exec(text)) !== null) {
    total += parseFloat(match[1]) * { ms: 1, s: 1000, m: 60000, h: 3600000 }[match[2]];
  }
  return total;
}

const HOLD_FROM = millis(RAMP);
const HOLD_TO = HOLD_FROM + millis(HOLD);

// The plateau only: requests sent while all VUS are running. The ramps stay in k6's own
// http_req_duration (and its thresholds), as in the guide.
const holdDuration = new Trend('hold_req_duration', true);
const holdRequests = new Counter('hold_reqs');
const holdFailed = new Rate('hold_req_failed');

// The guide's order, exactly as its script sends it (seed_demo creates its customer and product).
export const GUIDE_ORDER = JSON.stringify({
  customer_id: '550e8400-e29b-41d4-a716-446655440001',
  items: [{
    product_id: '550e8400-e29b-41d4-a716-446655440002',
    sku: 'TEST-001',
    quantity: 2,
    unit_price: 29.99,
  }],
  total_amount: 59.98,
});

export const options = {
  stages: [
    { duration: RAMP, target: VUS }, // ramp up
    { duration: HOLD, target: VUS }, // stay
    { duration: DOWN, target: 0 }, // ramp down
  ],
  thresholds: {
    http_req_duration: ['p(95)<500'], // the guide: 95% of requests < 500ms
    http_req_failed: ['rate<0.01'], // the guide: error rate < 1%
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(50)', 'p(90)', 'p(95)', 'p(99)', 'count'],
  // Bodies are read by the server and thrown away here: k6 shares the machine's CPU with it.
  discardResponseBodies: true,
  noConnectionReuse: false,
  userAgent: 'stateset-loadtest/1 (k6)',
};

export function headers(extra) {
  // As nginx forwards a request it terminated TLS for (production redirects plain HTTP to HTTPS).
  const h = Object.assign({ 'X-Forwarded-Proto': 'https' }, extra || {});
  if (API_KEY) h['X-API-Key'] = API_KEY;
  if (ACCEPT_ENCODING) h['Accept-Encoding'] = ACCEPT_ENCODING;
  return h;
}

let reported = 0;

// Checks the status, feeds the hold metrics, and logs the first few failures of each VU with
// their body (requests that may fail ask for a text body with responseType: 'text').
export function record(res, expected, name) {
  const ok = res.status === expected;
  check(res, { [`${name} status is ${expected}`]: () => ok });
  const t = Date.now() - exec.scenario.startTime;
  if (t >= HOLD_FROM && t < HOLD_TO) {
    holdDuration.add(res.timings.duration);
    holdRequests.add(1);
    holdFailed.add(!ok);
  }
  if (!ok && reported < 3) {
    reported += 1;
    const body = typeof res.body === 'string' ? res.body.slice(0, 500) : '';
    console.warn(`FAILED ${name}: status=${res.status} error=${res.error || ''} body=${body}`);
  }
  if (SLEEP > 0) sleep(SLEEP);
  return ok;
}

function fmt(metric, stat) {
  const v = metric && metric.values ? metric.values[stat] : undefined;
  return v === undefined ? '-' : v.toFixed(2);
}

export function summary(data, name) {
  const out = {};
  if (__ENV.SUMMARY_PATH) out[__ENV.SUMMARY_PATH] = JSON.stringify(data, null, 1);
  const m = data.metrics;
  const hold = m.hold_req_duration;
  const count = m.hold_reqs ? m.hold_reqs.values.count : 0;
  const failed = m.hold_req_failed ? m.hold_req_failed.values.rate : 0;
  out.stdout =
    `${name}: plateau ${VUS} VUs${SLEEP ? ` (sleep ${SLEEP}s)` : ''}, ${count} requests in ${HOLD}: ` +
    `p50 ${fmt(hold, 'p(50)')} ms, p95 ${fmt(hold, 'p(95)')} ms, p99 ${fmt(hold, 'p(99)')} ms, ` +
    `${(count / (millis(HOLD) / 1000)).toFixed(1)} req/s, failed ${(failed * 100).toFixed(2)}%; ` +
    `whole run p95 ${fmt(m.http_req_duration, 'p(95)')} ms, failed ${(m.http_req_failed.values.rate * 100).toFixed(2)}%\n`;
  return out;
}
