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

-- Enrichment (event.Context), added after the first release: a store
-- made before has its columns added here, at the end, in this order,
-- which eventRow and query.EventColumns follow.
ALTER TABLE events ADD COLUMN IF NOT EXISTS src_asset VARCHAR;      -- the asset that held src_ip then
ALTER TABLE events ADD COLUMN IF NOT EXISTS src_owner VARCHAR;
ALTER TABLE events ADD COLUMN IF NOT EXISTS src_country VARCHAR;    -- ISO code, from GeoIP
ALTER TABLE events ADD COLUMN IF NOT EXISTS src_city VARCHAR;
ALTER TABLE events ADD COLUMN IF NOT EXISTS src_asn UINTEGER;
ALTER TABLE events ADD COLUMN IF NOT EXISTS src_as_org VARCHAR;
ALTER TABLE events ADD COLUMN IF NOT EXISTS src_cloud VARCHAR;      -- provider/service/region of published ranges
ALTER TABLE events ADD COLUMN IF NOT EXISTS dst_asset VARCHAR;
ALTER TABLE events ADD COLUMN IF NOT EXISTS dst_owner VARCHAR;
ALTER TABLE events ADD COLUMN IF NOT EXISTS dst_country VARCHAR;
ALTER TABLE events ADD COLUMN IF NOT EXISTS dst_city VARCHAR;
ALTER TABLE events ADD COLUMN IF NOT EXISTS dst_asn UINTEGER;
ALTER TABLE events ADD COLUMN IF NOT EXISTS dst_as_org VARCHAR;
ALTER TABLE events ADD COLUMN IF NOT EXISTS dst_cloud VARCHAR;
ALTER TABLE events ADD COLUMN IF NOT EXISTS team VARCHAR;           -- the account's owner
ALTER TABLE events ADD COLUMN IF NOT EXISTS intel VARCHAR[];        -- threat-intel lists that matched
ALTER TABLE events ADD COLUMN IF NOT EXISTS intel_indicator VARCHAR[]; -- the values they matched, in the same order
ALTER TABLE events ADD COLUMN IF NOT EXISTS intel_type VARCHAR[];

-- Origins learned after the event was stored (identity reassembly's
-- backfill: the call that issued its credential arrived after it). The
-- events table holds the new origin; the ledger keeps the one known at
-- ingest, recorded here beside it so that a comparison of the store with
-- the ledger tells a backfill from a store gone wrong.
CREATE TABLE IF NOT EXISTS origin_backfills (
    seq           UBIGINT PRIMARY KEY,
    origin        VARCHAR NOT NULL,
    ledger_origin VARCHAR
);

-- Metric samples (monitor): a row a sample. series is a hash of the
-- tenant, metric and labels; labels is a JSON object, names in order.
CREATE TABLE IF NOT EXISTS samples (
    tenant  VARCHAR NOT NULL,
    metric  VARCHAR NOT NULL,
    series  UBIGINT NOT NULL,
    labels  VARCHAR NOT NULL,
    time    TIMESTAMP_NS NOT NULL,
    value   DOUBLE NOT NULL
);

-- Metric samples older than a few days, an hour a row (Downsample): the
-- mean, least and greatest of the hour's samples, and how many.
CREATE TABLE IF NOT EXISTS samples_hourly (
    tenant  VARCHAR NOT NULL,
    metric  VARCHAR NOT NULL,
    series  UBIGINT NOT NULL,
    labels  VARCHAR NOT NULL,
    time    TIMESTAMP_NS NOT NULL,   -- the hour's start
    value   DOUBLE NOT NULL,         -- the mean
    min     DOUBLE NOT NULL,
    max     DOUBLE NOT NULL,
    count   UBIGINT NOT NULL
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

-- The word index (index.go): a bloom filter of the words of each block of
-- events, checked before a search for words reads their raw text. Derived
-- from the events like the rest of the store; a seq range without a
-- filter is searched in full. This is its first segment; the next ones,
-- token_blooms_2 and on, are made like it (indexstore.go says why).
CREATE TABLE IF NOT EXISTS token_blooms_1 (
    seq_lo       UBIGINT NOT NULL,    -- the block's events have seq in [seq_lo, seq_hi]
    seq_hi       UBIGINT NOT NULL,
    row_count    UINTEGER NOT NULL,   -- events in the block
    algo         USMALLINT NOT NULL,  -- version of the word split, hashes and filter layout
    hashes       UTINYINT NOT NULL,   -- bits set per item
    bits         BLOB NOT NULL        -- the filter: 64-byte lines of little-endian words
);

-- Seq ranges whose ledger records are not events here: the ledger's own
-- records (batch keys, retention) and redacted events. Missing counts
-- them as present, so that catching up does not look at them again.
CREATE TABLE IF NOT EXISTS ledger_other (
    first UBIGINT NOT NULL,
    last  UBIGINT NOT NULL
);
