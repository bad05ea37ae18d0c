-- A service's own first migration, for the kit's tests.
CREATE TABLE widgets (name TEXT PRIMARY KEY, colour TEXT NOT NULL);
