#!/usr/bin/env node
// Container health check (Dockerfile HEALTHCHECK, docker-compose.yml): exit 0 when the process's
// /readyz answers 200 on loopback, 1 otherwise. Port: argv[2], else TRIBUTARY_METRICS_PORT, else 9400.
'use strict';

const port = Number(process.argv[2] ?? process.env.TRIBUTARY_METRICS_PORT ?? 9400);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write(`docker-healthcheck: bad port ${JSON.stringify(process.argv[2] ?? process.env.TRIBUTARY_METRICS_PORT)}\n`);
  process.exit(2);
}
fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(4000) }).then(
  (res) => process.exit(res.status === 200 ? 0 : 1),
  () => process.exit(1),
);
