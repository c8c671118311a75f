// POST /api/v1/inventory/reserve: one unit of TEST-001, a unique reference per request (nothing is
// released: the load-test product has 100,000,000 units). Guide baseline 45 / 110 / 190 ms.
import exec from 'k6/execution';
import http from 'k6/http';
import { BASE_URL, headers, options, record, summary } from './lib/common.js';

export { options };

const RUN = `${Date.now().toString(36)}`;

export default function () {
  const body = JSON.stringify({
    items: [{ sku: 'TEST-001', quantity: 1 }],
    reference_type: 'loadtest',
    reference_id: `lt-${RUN}-${exec.vu.idInTest}-${exec.vu.iterationInScenario}`,
  });
  const res = http.post(`${BASE_URL}/api/v1/inventory/reserve`, body, {
    headers: headers({ 'Content-Type': 'application/json' }),
    tags: { name: 'POST /api/v1/inventory/reserve' },
    responseType: 'text',
  });
  record(res, 201, 'reserve');
}

export function handleSummary(data) {
  return summary(data, 'inventory_reserve');
}
