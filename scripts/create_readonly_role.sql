-- A read-only role for analysts on overnight's PostgreSQL database.
--
-- Creates the group role `overnight_reader` (NOLOGIN) if it does not exist, and lets it read
-- every table and view of overnight's schema, now and later (default privileges for tables the
-- migrating user creates in future migrations). It can write nothing: no INSERT, UPDATE, DELETE,
-- TRUNCATE, and no CREATE in the schema. People log in as their own users, members of the role.
--
-- Run it with psql as the user that runs the migrations (the owner of the tables), or a superuser:
--
--   psql "postgresql://owner@db-host/overnight" -f scripts/create_readonly_role.sql
--   psql ... -v schema=analytics -v reader=overnight_reader -v owner=overnight -f scripts/create_readonly_role.sql
--
-- Variables (all optional): schema (default public), reader (default overnight_reader), owner
-- (whose future tables the reader may read; default: the user running this script). psql quotes
-- them as identifiers (:"schema"), so no name is ever spliced into SQL as text. Safe to run again.

\set ON_ERROR_STOP on
\if :{?schema}
\else
    \set schema public
\endif
\if :{?reader}
\else
    \set reader overnight_reader
\endif
\if :{?owner}
\else
    SELECT current_user AS owner \gset
\endif

BEGIN;

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'reader') AS reader_is_new \gset
\if :reader_is_new
    CREATE ROLE :"reader" NOLOGIN;
    COMMENT ON ROLE :"reader" IS 'overnight: read-only access for analysts (scripts/create_readonly_role.sql)';
\endif

-- Reading: the schema itself, every table and view in it (views count as tables here: the three
-- analyst views prediction_quality_daily, drift_alerts and labeling_queue among them). CONNECT on
-- the database is PostgreSQL's default for every role; if yours revoked it from PUBLIC, also run
--   GRANT CONNECT ON DATABASE overnight TO overnight_reader;
GRANT USAGE ON SCHEMA :"schema" TO :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA :"schema" TO :"reader";
-- ... and every table or view the owner creates there later (new migrations).
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema" GRANT SELECT ON TABLES TO :"reader";

-- Writing: nothing. Privileges someone granted by hand earlier are taken back, so running the
-- script states the whole truth about the role.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA :"schema" FROM :"reader";
REVOKE CREATE ON SCHEMA :"schema" FROM :"reader";

COMMIT;

-- PostgreSQL 14 and older let every user CREATE in the `public` schema. If overnight lives in
-- `public` on such a server, take that away too (it affects every role, so decide deliberately):
--   REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- TEMPORARY: PostgreSQL grants every role the right to create temporary tables in every
-- database (through PUBLIC), so a reader can `CREATE TEMP TABLE` for its own scratch work. Such a
-- table lives in the session's own schema, disappears at disconnect and cannot change overnight's
-- tables. A right granted to PUBLIC cannot be taken from one role; to take it from everyone but
-- the owner (overnight's loader needs no temporary table), deliberately:
--   REVOKE TEMPORARY ON DATABASE overnight FROM PUBLIC;
--   GRANT TEMPORARY ON DATABASE overnight TO overnight;

-- An analyst's login, a member of the role. Replace the name and the placeholder password (or
-- better, use \password in psql so that the password never lands in a file or the shell history):
--
--   CREATE ROLE alice LOGIN PASSWORD 'REPLACE-ME' IN ROLE overnight_reader;
--   ALTER ROLE alice SET default_transaction_read_only = on;  -- belt and braces
--   ALTER ROLE alice SET search_path = public;                -- or overnight's schema
--
-- Then: psql "postgresql://alice@db-host/overnight" -c 'SELECT * FROM drift_alerts LIMIT 5'
