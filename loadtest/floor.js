// The framework floor (SPEC §9): a separate, bare Django project (loadtest/floor: no apps, no
// middleware, no database, one JSON view) served by the same gunicorn binary with the same flags
// as the API, on its own port (`make bench` starts it and passes its URL as BASE_URL).
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
