import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The gateway's Prometheus metrics (served at its /metrics). */
export class GatewayMetrics {
  readonly requests: Counter<'endpoint' | 'outcome'>;
  /** Time from the request's arrival to each event (accepted, features, prediction, shadow, dead-letter). */
  readonly eventLatency: Histogram<'event'>;
  readonly inFlight: Gauge;
  readonly openStreams: Gauge;
  readonly openConnections: Gauge;
  /** Records the reply consumer fetched, per partition, from kafkajs' instrumentation events. */
  readonly replyRecordsFetched: Counter<'partition'>;
  readonly orphanReplies: Counter;

  constructor(readonly registry = new Registry(), withDefaults = false) {
    if (withDefaults) collectDefaultMetrics({ register: registry });
    this.requests = new Counter({ name: 'tributary_gateway_requests_total', help: 'Requests by endpoint and outcome (ok, replayed, bad_request, unauthorized, conflict, too_large, overloaded, unavailable, timeout, dead_letter, error).', labelNames: ['endpoint', 'outcome'], registers: [registry] });
    this.eventLatency = new Histogram({ name: 'tributary_gateway_event_latency_seconds', help: 'Time from the request to each update event, by event type.', labelNames: ['event'], buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30], registers: [registry] });
    this.inFlight = new Gauge({ name: 'tributary_gateway_in_flight_requests', help: 'Requests waiting for their outcome.', registers: [registry] });
    this.openStreams = new Gauge({ name: 'tributary_gateway_open_streams', help: 'Open /v1/stream responses.', registers: [registry] });
    this.openConnections = new Gauge({ name: 'tributary_gateway_open_connections', help: 'Open client connections.', registers: [registry] });
    this.replyRecordsFetched = new Counter({ name: 'tributary_gateway_reply_records_fetched_total', help: 'Reply records fetched by this instance, by reply partition (kafkajs instrumentation).', labelNames: ['partition'], registers: [registry] });
    this.orphanReplies = new Counter({ name: 'tributary_gateway_orphan_replies_total', help: 'Replies for no request waiting here (the request ended and its late window passed).', registers: [registry] });
  }
}
