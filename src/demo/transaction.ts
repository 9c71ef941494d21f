/**
 * A card transaction: the input event of the fraud demo topology.
 *
 * Mirrors the Avro record `tributary.fraud.Transaction` in schemas/transaction.avsc field for field.
 * Temporary hand-written definition; it will be replaced by a re-export of the generated types, so
 * keep the field names exactly as in the schema.
 */
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
  /** When the transaction happened, ms since epoch (UTC). */
  eventTime: number;
}
