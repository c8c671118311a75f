// The platform's fixed cost per request (SPEC §9): an authenticated GET of a tiny table. Every API
// request pays what this one pays — key lookup, scope, rate limit, request log, metrics, DRF's
// dispatch, the envelope — on top of its own work.
import http from 'k6/http';
import { BASE_URL, headers, options, record, summary } from './lib/common.js';

export { options };

const params = { headers: headers(), tags: { name: 'GET /api/v1/locations' } };

export default function () {
  record(http.get(`${BASE_URL}/api/v1/locations`, params), 200, 'locations');
}

export function handleSummary(data) {
  return summary(data, 'locations');
}
