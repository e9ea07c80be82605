-- Row-level security: a second fence behind the company-scoped store.
--
-- Roles. Migrations run as the OWNER role, which owns every table and function here. The server
-- serves as an APP role that owns nothing, is neither superuser nor BYPASSRLS, and holds only
-- row privileges (granted by `worktrail-server migrate --migrate-url <owner URL>`, see
-- docs/DEPLOY.md). Every table with a company_id column has ROW LEVEL SECURITY enabled and
-- FORCEd, with the policy `tenant`: a row is visible and writable only when its company_id
-- equals the transaction's `app.company_id` setting. The store sets it with
-- set_config('app.company_id', <company>, true) at the start of each tenant transaction; it is
-- transaction-local, so a connection returned to the pool carries no tenant, and a query
-- without one sees no rows (an unset or reset setting reads as '' or NULL, never a company).
--
-- Reads across companies are deliberate and narrow:
-- * finding the company (or session) that a secret belongs to (a company key, an invitation
--   token, a session cookie) and the companies of a sign-in e-mail: SECURITY DEFINER functions
--   below, owned by the owner role, each answering one lookup by an exact secret hash or
--   e-mail; the rest of the request runs in that company's context;
-- * the platform scope (`app.scope` = 'platform', set only by the owner pages and the jobs'
--   schedulers): SELECT on subscriptions, subscription history, the daily rollups and the
--   rollup marks of every company. It reaches no person, span, title, URL or screenshot; seat
--   counts come from worktrail_seats_used(). Writes always need a tenant context: the jobs
--   take the company list from the platform scope and then work one company at a time.
-- `companies`, `plans`, `owners` and the job tables hold no company_id: they are platform
-- metadata, not tenant rows.
--
-- The policy `owner_role` lets the owner role (this migration's current_user) see every row,
-- which the SECURITY DEFINER functions and later data migrations need; the app role is not
-- that role and is not a member of it.

DO $$
DECLARE
    t regclass;
    tenant_expr text := 'company_id = NULLIF(current_setting(''app.company_id'', true), '''')::uuid';
BEGIN
    FOR t IN
        SELECT c.oid::regclass
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'company_id' AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant ON %s USING (%s) WITH CHECK (%s)', t, tenant_expr, tenant_expr);
        EXECUTE format('CREATE POLICY owner_role ON %s TO %I USING (true) WITH CHECK (true)', t, current_user);
    END LOOP;
END
$$;

-- The platform scope: reads only, of billing metadata and rollups.
CREATE POLICY platform_read ON subscriptions FOR SELECT
    USING (current_setting('app.scope', true) = 'platform');
CREATE POLICY platform_read ON subscription_events FOR SELECT
    USING (current_setting('app.scope', true) = 'platform');
CREATE POLICY platform_read ON company_usage_daily FOR SELECT
    USING (current_setting('app.scope', true) = 'platform');
CREATE POLICY platform_read ON rollup_dirty FOR SELECT
    USING (current_setting('app.scope', true) = 'platform');

-- The lookups before a tenant is known. search_path is pinned (pg_temp last) so no caller can
-- shadow a table the functions read.
CREATE FUNCTION worktrail_key_company(hash BYTEA) RETURNS TABLE (company_id UUID)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT k.company_id FROM company_keys k WHERE k.key_hash = hash
$$;

CREATE FUNCTION worktrail_login_companies(address TEXT) RETURNS TABLE (company_id UUID)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT DISTINCT u.company_id FROM users u WHERE u.email = address
$$;

CREATE FUNCTION worktrail_invitation_company(hash BYTEA) RETURNS TABLE (company_id UUID)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT i.company_id FROM invitations i WHERE i.token_hash = hash
$$;

-- Sessions are found by the hash of their cookie before the company is known, and owner
-- sessions belong to no company: the session table is reached only through these three.
CREATE FUNCTION worktrail_session_find(hash BYTEA)
RETURNS TABLE (owner_id UUID, company_id UUID, user_id UUID, expires_at_ms BIGINT)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT s.owner_id, s.company_id, s.user_id, s.expires_at_ms FROM sessions s
    WHERE s.token_hash = hash
$$;

CREATE FUNCTION worktrail_session_create(
    hash BYTEA, owner UUID, company UUID, usr UUID, now_ms BIGINT, expires BIGINT
) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO sessions (token_hash, owner_id, company_id, user_id, created_at_ms,
                          expires_at_ms, last_seen_at_ms)
    VALUES (hash, owner, company, usr, now_ms, expires, now_ms)
$$;

CREATE FUNCTION worktrail_session_delete(hash BYTEA) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DELETE FROM sessions WHERE token_hash = hash
$$;

-- Seats used per company (active employees), for the owner's company list: a count, no person.
CREATE FUNCTION worktrail_seats_used() RETURNS TABLE (company_id UUID, seats BIGINT)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT u.company_id, COUNT(*) FROM users u
    WHERE u.role = 'EMPLOYEE' AND u.active GROUP BY u.company_id
$$;

REVOKE ALL ON FUNCTION worktrail_key_company(BYTEA), worktrail_login_companies(TEXT),
    worktrail_invitation_company(BYTEA), worktrail_session_find(BYTEA),
    worktrail_session_create(BYTEA, UUID, UUID, UUID, BIGINT, BIGINT),
    worktrail_session_delete(BYTEA), worktrail_seats_used() FROM PUBLIC;
