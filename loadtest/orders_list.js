// The guide's read: GET /api/v1/orders?page=1&limit=20. Guide baseline 30 / 80 / 150 ms.
import http from 'k6/http';
import { BASE_URL, headers, options, record, summary } from './lib/common.js';

export { options };

const params = { headers: headers(), tags: { name: 'GET /api/v1/orders' } };

export default function () {
  record(http.get(`${BASE_URL}/api/v1/orders?page=1&limit=20`, params), 200, 'list orders');
}

export function handleSummary(data) {
  return summary(data, 'orders_list');
}
