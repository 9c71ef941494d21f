// Generated from examples/fraud/schemas/*.avsc by `npm run gen:types`. Do not edit by hand.
/* eslint-disable */

export interface Transaction {
  /** Unique id; also the Kafka message key. */
  transactionId: string;
  cardId: string;
  merchantId: string;
  /** Amount in the transaction currency. */
  amount: number;
  /** ISO 4217 code. */
  currency: string;
  /** Merchant category (e.g. grocery, electronics). */
  merchantCategory: string;
  /** ISO 3166-1 alpha-2 country of the merchant. */
  country: string;
  /** When the transaction happened (ms since epoch). */
  eventTime: number;
}

/** Schema file name (examples/fraud/schemas/<name>.avsc) -> the TypeScript type of its records. */
export interface SchemaTypes {
  'transaction': Transaction;
}
