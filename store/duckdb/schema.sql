-- The events table: one row per normalized event, ordered by time on
-- insert so that time-bounded queries read few row groups.
CREATE TABLE IF NOT EXISTS events (
    seq          UBIGINT NOT NULL,    -- ledger index
    time         TIMESTAMP_NS NOT NULL, -- event time, UTC
    received     TIMESTAMP_NS NOT NULL,
    skewed       BOOLEAN NOT NULL,
    tenant       VARCHAR NOT NULL,
    source       VARCHAR NOT NULL,    -- format: aws.cloudtrail, gcp.audit, …
    class        VARCHAR NOT NULL,
    event_id     VARCHAR,
    provider     VARCHAR,
    account      VARCHAR,
    region       VARCHAR,
    environment  VARCHAR,
    actor        VARCHAR,             -- actor name
    actor_id     VARCHAR,
    actor_type   VARCHAR,
    session_id   VARCHAR,
    session_origin VARCHAR,
    src_ip       VARCHAR,             -- canonical text form
    src_ip_bin   BLOB,                -- 16-byte IPv6 (IPv4-mapped) form, for CIDR ranges
    dst_ip       VARCHAR,
    dst_ip_bin   BLOB,
    src_port     USMALLINT,
    dst_port     USMALLINT,
    host         VARCHAR,
    user_agent   VARCHAR,
    service      VARCHAR,
    action       VARCHAR,
    resources    VARCHAR[],
    outcome      VARCHAR,             -- success, failure, unknown
    error_code   VARCHAR,
    message      VARCHAR,
    origin       VARCHAR,             -- file:line or listener
    raw          VARCHAR NOT NULL,    -- the exact bytes received (invalid UTF-8 replaced; see raw_bin)
    raw_bin      BLOB,                -- the exact bytes, only when raw is not valid UTF-8
    doc          VARCHAR              -- JSON document for original field names when it is not raw
);

-- Inputs that could not be parsed, kept with the reason.
CREATE TABLE IF NOT EXISTS quarantine (
    received     TIMESTAMP_NS NOT NULL,
    tenant       VARCHAR NOT NULL,
    source       VARCHAR NOT NULL,    -- the format that was tried
    origin       VARCHAR NOT NULL,    -- file or listener
    line         UBIGINT,             -- 1-based line (or record) number, if known
    "offset"     UBIGINT,             -- byte offset in the (decompressed) input
    reason       VARCHAR NOT NULL,
    raw          VARCHAR NOT NULL,
    raw_bin      BLOB
);
