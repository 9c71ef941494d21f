/** The typed client API for services outside the pipeline: producers of input events and consumers of predictions. */
export * from './generated/avro-types';
export { TopicProducer, EventValidationError, UnknownTopicError, type TopicProducerOptions } from './topic-producer';
export { TopicConsumer, type TopicConsumerOptions, type ConsumedMeta } from './topic-consumer';
export { GatewayClient, GatewayHttpError, type GatewayClientOptions, type RequestOptions, type PredictAnswer, type GatewayEvent } from './gateway-client';
export { schemaSet, type SchemaSet, type SchemaName, type SchemaRecord } from './schema-set';
