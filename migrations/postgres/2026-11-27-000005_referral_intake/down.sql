DROP TABLE idempotency_keys;
DROP TABLE unique_identifiers;
