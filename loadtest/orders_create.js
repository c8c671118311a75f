// The guide's write: POST /api/v1/orders with the guide's exact payload and a fresh
// Idempotency-Key per request (the order reserves 2 units of TEST-001). Guide baseline
// 50 / 120 / 200 ms. The API answers 201 Created (the guide's script checked 200).
import http from 'k6/http';
import { BASE_URL, GUIDE_ORDER, headers, options, record, summary } from './lib/common.js';

export { options };

const orderPayload = GUIDE_ORDER;

export default function () {
  const res = http.post(`${BASE_URL}/api/v1/orders`, orderPayload, {
    headers: headers({
      'Content-Type': 'application/json',
      'Idempotency-Key': `test-${Date.now()}-${Math.random()}`,
    }),
    tags: { name: 'POST /api/v1/orders' },
    responseType: 'text',
  });
  record(res, 201, 'create order');
}

export function handleSummary(data) {
  return summary(data, 'orders_create');
}
