DROP TABLE idempotency_keys;
DROP INDEX search_tokens_unique_identifier;
