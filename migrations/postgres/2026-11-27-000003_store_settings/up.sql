-- Facts about the stored data itself, such as the version of the search index it was
-- built with (a newer server rebuilds the index when it extracts values differently).
CREATE TABLE store_settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
