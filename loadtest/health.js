// GET /health: the liveness probe (touches nothing). Guide baseline 5 / 10 / 15 ms.
import http from 'k6/http';
import { BASE_URL, headers, options, record, summary } from './lib/common.js';

export { options };

const params = { headers: headers(), tags: { name: 'GET /health' } };

export default function () {
  record(http.get(`${BASE_URL}/health`, params), 200, 'health');
}

export function handleSummary(data) {
  return summary(data, 'health');
}
