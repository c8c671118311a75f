// The framework floor: a bare Django JSON view behind the same middleware, workers and settings as
// the API (served at /_bench/floor when STATESET_URLCONF=loadtest.urls, as `make bench` does).
import http from 'k6/http';
import { BASE_URL, headers, options, record, summary } from './lib/common.js';

export { options };

const params = { headers: headers(), tags: { name: 'GET /_bench/floor' } };

export default function () {
  record(http.get(`${BASE_URL}/_bench/floor`, params), 200, 'floor');
}

export function handleSummary(data) {
  return summary(data, 'floor');
}
