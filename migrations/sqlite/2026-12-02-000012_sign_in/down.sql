DROP TABLE launches;
DROP TABLE refresh_tokens;
DROP TABLE auth_codes;
DROP TABLE grants;
DROP TABLE invitations;
DROP TABLE users;
ALTER TABLE clients DROP COLUMN secret_hash;
ALTER TABLE clients DROP COLUMN redirect_uris;
ALTER TABLE clients DROP COLUMN kind;
