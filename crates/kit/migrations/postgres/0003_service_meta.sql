-- Which service owns this database. Each service's first migration records its name, and
-- the kit refuses to run a service against a database that another service owns.
CREATE TABLE service_meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
