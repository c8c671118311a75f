// GET /api/v1/products/search?q=...: full-text search with prefix matching over name, SKU and
// description. Queries rotate over prefixes a shopper types (and one exact SKU). Guide baseline
// 40 / 100 / 180 ms. QUERIES="a,b,c" replaces the list.
import exec from 'k6/execution';
import http from 'k6/http';
import { BASE_URL, headers, options, record, summary } from './lib/common.js';

export { options };

const QUERIES = (__ENV.QUERIES || 'wid,lamp,ergo,bamboo chair,head,kett,yoga,walnut desk,TEST-001,copper')
  .split(',').map((q) => q.trim()).filter((q) => q);
const params = { headers: headers(), tags: { name: 'GET /api/v1/products/search' } };

export default function () {
  const q = QUERIES[exec.scenario.iterationInTest % QUERIES.length];
  const url = `${BASE_URL}/api/v1/products/search?q=${encodeURIComponent(q)}&limit=20`;
  record(http.get(url, params), 200, 'search products');
}

export function handleSummary(data) {
  return summary(data, 'products_search');
}
