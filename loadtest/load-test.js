// The guide's load-test script ("Load Testing" in the performance-tuning guide), runnable as is
// with your own k6: list orders, then create one, per iteration. Differences from the guide: the
// URL and key come from the environment, the stages are the shortened ones of lib/common.js, the
// create check expects 201 Created, and there is no sleep(1) unless SLEEP=1 (the guide's pacing).
//
//   k6 run -e BASE_URL=http://127.0.0.1:8000 -e API_KEY=sk_... loadtest/load-test.js
//
// `make bench` runs the two requests as separate scenarios (orders_list.js, orders_create.js) so
// each endpoint gets its own numbers.
import http from 'k6/http';
import { check, sleep } from 'k6';
import { BASE_URL, GUIDE_ORDER, headers, options } from './lib/common.js';

export { options };

const API = `${BASE_URL}/api/v1`;
const PAUSE = parseFloat(__ENV.SLEEP || '0');

export default function () {
  // Test: List orders
  const listResponse = http.get(`${API}/orders?page=1&limit=20`, { headers: headers() });

  check(listResponse, {
    'list orders status is 200': (r) => r.status === 200,
    'list orders duration < 200ms': (r) => r.timings.duration < 200,
  });

  if (PAUSE) sleep(PAUSE);

  // Test: Create order
  const orderPayload = GUIDE_ORDER;

  const createResponse = http.post(`${API}/orders`, orderPayload, {
    headers: headers({
      'Content-Type': 'application/json',
      'Idempotency-Key': `test-${Date.now()}-${Math.random()}`,
    }),
  });

  check(createResponse, {
    'create order status is 201': (r) => r.status === 201,
    'create order duration < 500ms': (r) => r.timings.duration < 500,
  });

  if (PAUSE) sleep(PAUSE);
}
