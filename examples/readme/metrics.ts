import { createServer } from 'node:http';
import { KeyPool, PROMETHEUS_CONTENT_TYPE } from 'keymesh';

const pool = await KeyPool.create({ keys: ['sk-fake-metrics-key-a', 'sk-fake-metrics-key-b'] });

const server = createServer((_req, res) => {
  res.setHeader('content-type', PROMETHEUS_CONTENT_TYPE);
  res.end(pool.metrics.toPrometheus({ labels: { pool: 'openai' } }));
}).listen(Number(process.env.METRICS_PORT ?? 9464), '127.0.0.1');

// What Prometheus would scrape:
await new Promise((listening) => server.once('listening', listening));
const address = server.address();
const port = typeof address === 'object' && address !== null ? address.port : 9464;
console.log(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
server.close();
await pool.close();
