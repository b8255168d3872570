import { metrics } from '@opentelemetry/api';
import { KeyPool } from 'keymesh';

const pool = await KeyPool.create({ keys: ['sk-fake-otel-key-a', 'sk-fake-otel-key-b'] });

// With an OpenTelemetry SDK registered, these instruments are collected like any other.
const unbind = pool.metrics.bindOpenTelemetry(metrics.getMeter('keymesh'), {
  attributes: { 'keymesh.pool': 'openai' },
});

unbind();
await pool.close();
