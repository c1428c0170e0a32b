DROP TABLE conditional_keys;
DROP TABLE search_tokens;
DROP TABLE resource_versions;
DROP TABLE resources;
