#!/usr/bin/env node
// Summarises the broker's DEBUG request-log lines ("Completed request:{json}") between two
// timestamps ("YYYY-MM-DD HH:MM:SS", the broker log's own clock): requests/s by client and API, and
// for fetches per connection and topic how many returned records. Used by broker-request-log.sh.
'use strict';
const fs = require('node:fs');
const [file, from, to] = process.argv.slice(2);
if (!file || !from || !to) {
  console.error('usage: broker-request-log-summary.js KAFKA_LOG FROM TO');
  process.exit(2);
}
const MARK = 'Completed request:';
const byApi = new Map();
const fetches = new Map();
let first, last;
const bump = (m, k, withRecords) => {
  const x = m.get(k) ?? { n: 0, withRecords: 0 };
  x.n++;
  if (withRecords) x.withRecords++;
  m.set(k, x);
};
for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
  const at = line.indexOf(MARK);
  if (at < 0) continue;
  const ts = line.slice(1, 20); // [2026-12-06 00:33:26,123]
  if (ts < from || ts >= to) continue;
  const j = JSON.parse(line.slice(at + MARK.length, line.lastIndexOf(' (kafka.request.logger)')));
  const h = j.requestHeader;
  first ??= ts;
  last = ts;
  bump(byApi, `${h.requestApiKeyName}\t${h.clientId}`, false);
  if (h.requestApiKeyName !== 'FETCH') continue;
  const responses = typeof j.response === 'object' && j.response ? j.response.responses ?? [] : [];
  const topics = [...new Set(responses.map((r) => r.topic))].sort().join(',') || '(no partitions in the answer)';
  const withRecords = responses.some((r) => r.partitions.some((p) => p.recordsSizeInBytes > 0));
  bump(fetches, `${h.clientId}\t${j.connection.split('-').pop()}\t${topics}`, withRecords);
}
if (!first) {
  console.log('no request-log lines in the window');
  process.exit(0);
}
const seconds = (Date.parse(`${last.replace(" ", "T")}Z`) - Date.parse(`${first.replace(" ", "T")}Z`)) / 1000 + 1; // whole seconds of log time, both ends included
console.log(`requests/s over ${seconds} s (${first} .. ${last})`);
for (const [k, x] of [...byApi].sort((a, b) => b[1].n - a[1].n)) {
  const [api, client] = k.split('\t');
  console.log(`${(x.n / seconds).toFixed(1).padStart(8)}  ${api.padEnd(24)} ${client}`);
}
console.log('fetches/s by client, connection and topics (with records)');
for (const [k, x] of [...fetches].sort((a, b) => b[1].n - a[1].n)) {
  const [client, conn, topics] = k.split('\t');
  console.log(`${(x.n / seconds).toFixed(1).padStart(8)} (${(x.withRecords / seconds).toFixed(1)})  ${client} #${conn} ${topics}`);
}
