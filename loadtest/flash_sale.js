// The flash sale (SPEC §9): 64 VUs order one SKU that holds FLASH_UNITS units (5,000), one unit per
// order, until it is sold out and beyond: exactly FLASH_UNITS orders succeed (201) and every other
// request is a clean 409 insufficient_stock. `make bench` creates the product (FLASH_PRODUCT_ID)
// and checks the stock row afterwards: no unit oversold, none lost.
import http from 'k6/http';
import { Counter } from 'k6/metrics';
import { BASE_URL, headers, record, summary } from './lib/common.js';

const VUS = parseInt(__ENV.VUS || '64', 10);
const ITERATIONS = parseInt(__ENV.FLASH_ITERATIONS || '7000', 10);
const sold = new Counter('flash_sold');
const refused = new Counter('flash_refused');
const other = new Counter('flash_other');

export const options = {
  scenarios: {
    flash: { executor: 'shared-iterations', vus: VUS, iterations: ITERATIONS, maxDuration: '10m' },
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(50)', 'p(90)', 'p(95)', 'p(99)', 'count'],
  discardResponseBodies: false,
  userAgent: 'stateset-loadtest/1 (k6)',
};

const body = JSON.stringify({
  customer_id: '550e8400-e29b-41d4-a716-446655440001',
  items: [{ product_id: __ENV.FLASH_PRODUCT_ID, quantity: 1 }],
});

export default function () {
  const res = http.post(`${BASE_URL}/api/v1/orders`, body, {
    headers: headers({ 'Content-Type': 'application/json' }),
    tags: { name: 'POST /api/v1/orders (flash sale)' },
    responseType: 'text',
  });
  if (res.status === 201) {
    sold.add(1);
  } else if (res.status === 409 && res.body.indexOf('insufficient_stock') >= 0) {
    refused.add(1);
  } else {
    other.add(1);
  }
  record(res, res.status === 409 ? 409 : 201, 'flash sale');
}

export function handleSummary(data) {
  return summary(data, 'flash_sale');
}
