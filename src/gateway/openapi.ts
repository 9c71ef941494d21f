import { topologySchemas } from '../kafka/avro-schemas';
import { jsonSchemaOf, type JsonSchema } from './avro-json';
import type { Gateway } from './gateway';

/**
 * The OpenAPI 3.0 document of a gateway, generated from its topology's Avro schemas: the request
 * body is the input topic's schema, the prediction is the prediction stage's output schema. Every
 * designed refusal (400, 401, 413, 422, 429, 503, 504) is in it with its body, so a spec-driven
 * fuzzer (Schemathesis) can tell them from failures.
 */
export function openApiDocument(gateway: Gateway, opts: { auth: boolean; maxTimeoutMs: number; maxBodyBytes: number }): Record<string, unknown> {
  const { view } = gateway;
  const { topology } = gateway;
  const catalog = topologySchemas(topology);
  const schemaOfStage = (stage: string) => {
    const s = topology.spec.stages.find((x) => x.name === stage)!;
    return jsonSchemaOf(catalog.get(topology.spec.topics.find((t) => t.name === s.output.topic)!.schema).type);
  };
  const error: JsonSchema = { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] };
  const problems: JsonSchema = { type: 'object', properties: { error: { type: 'string' }, problems: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, expected: { type: 'string' } }, required: ['path', 'expected'] } } }, required: ['error'] };
  const retryAfter = { 'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } } };
  const refusals = {
    '400': { description: 'The body is not JSON, does not match the input schema (each problem with its field path), or a parameter is malformed. Nothing was produced.', content: { 'application/json': { schema: problems } } },
    ...(opts.auth ? { '401': { description: 'Missing or wrong bearer token.', content: { 'application/json': { schema: error } } } } : {}),
    '413': { description: `Body larger than ${opts.maxBodyBytes} bytes.`, content: { 'application/json': { schema: error } } },
    '415': { description: 'Body is not application/json.', content: { 'application/json': { schema: error } } },
    '409': { description: 'The idempotency key was already used for a different event.', content: { 'application/json': { schema: error } } },
    '422': { description: 'A stage dead-lettered the event (stage, kind and reason in the body).', content: { 'application/json': { schema: { type: 'object', properties: { error: { type: 'string' }, stage: { type: 'string' }, errorKind: { type: 'string' }, errorMessage: { type: 'string' } }, required: ['error'] } } } },
    '429': { description: 'Too many requests in flight on this instance.', headers: retryAfter, content: { 'application/json': { schema: error } } },
    '503': { description: 'Too many connections, the instance is not ready, or Kafka/Redis refused the request.', headers: retryAfter, content: { 'application/json': { schema: error } } },
  };
  const params = [
    { name: 'timeoutMs', in: 'query', required: false, description: `Deadline in ms; larger values are capped at ${opts.maxTimeoutMs}.`, schema: { type: 'integer', minimum: 1, maximum: 999999999 } },
    { name: 'Idempotency-Key', in: 'header', required: false, description: 'A retry with the same key (on any instance) gets the same answer and produces no second event.', schema: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[\\x21-\\x7e]+$' } },
  ];
  const event = { $ref: '#/components/schemas/Event' };
  return {
    openapi: '3.0.3',
    info: { title: `Tributary gateway: ${view.name}`, version: '1', description: `Requests to topology ${view.name}: the event goes to ${view.inputTopic}; the answer is stage ${view.predictionStage}'s output.` },
    ...(opts.auth ? { security: [{ bearer: [] }] } : {}),
    paths: {
      '/v1/predict': {
        post: {
          summary: 'Send one event; answer with its prediction',
          parameters: params,
          requestBody: { required: true, content: { 'application/json': { schema: event } } },
          responses: {
            '200': { description: 'The prediction.', content: { 'application/json': { schema: { type: 'object', properties: { correlationId: { type: 'string' }, stage: { type: 'string' }, prediction: { $ref: '#/components/schemas/Prediction' }, input: { type: 'object' }, replayed: { type: 'boolean' }, ms: { type: 'number' } }, required: ['correlationId', 'prediction'] } } } },
            ...refusals,
            '504': { description: 'No prediction by the deadline; `stage` names the stage the event was waiting for.', content: { 'application/json': { schema: { type: 'object', properties: { error: { type: 'string' }, stage: { type: 'string' }, detail: { type: 'string' } }, required: ['error', 'stage'] } } } },
          },
        },
      },
      '/v1/stream': {
        post: {
          summary: 'Send one event; Server-Sent Events as it flows: accepted, features, prediction, shadow, dead-letter, timeout, end',
          parameters: params,
          requestBody: { required: true, content: { 'application/json': { schema: event } } },
          responses: { '200': { description: 'An event stream: each event is named by its type and its `data:` line is the event as JSON.', content: { 'text/event-stream': { schema: { type: 'object', properties: { event: { type: 'string', enum: ['accepted', 'features', 'stage', 'prediction', 'shadow', 'dead-letter', 'timeout', 'end'] }, data: { type: 'string' } }, required: ['event', 'data'] } } } }, ...refusals },
        },
      },
      '/v1/topology': { get: { summary: 'The topology, the input schema and an example event (for the playground)', security: [], responses: { '200': { description: 'ok', content: { 'application/json': { schema: { type: 'object' } } } } } } },
      '/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': { description: 'ok', content: { 'application/json': { schema: { type: 'object' } } } } } } },
      '/healthz': { get: { summary: 'Alive', security: [], responses: { '200': { description: 'ok', content: { 'application/json': { schema: { type: 'object' } } } } } } },
      '/readyz': { get: { summary: 'Ready to accept requests', security: [], responses: { '200': { description: 'ready', content: { 'application/json': { schema: { type: 'object' } } } }, '503': { description: 'not ready', content: { 'application/json': { schema: { type: 'object' } } } } } } },
      '/metrics': { get: { summary: 'Prometheus metrics', security: [], responses: { '200': { description: 'ok', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
    },
    components: {
      schemas: { Event: jsonSchemaOf(gateway.inputType), Prediction: schemaOfStage(view.predictionStage) },
      ...(opts.auth ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : {}),
    },
  };
}
