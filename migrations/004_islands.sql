-- Federation core: member profiles, islands (Garage clusters), who operates them, the
-- storage members pledge to them, and the history of what the health poller observed.
-- Owned by internal/islands.

ALTER TABLE members
    ADD COLUMN website     text NOT NULL DEFAULT '' CHECK (length(website) <= 500),
    ADD COLUMN description text NOT NULL DEFAULT '' CHECK (length(description) <= 2000);

-- An island is one Garage cluster. admin_token_sealed is the Garage admin token sealed with
-- internal/seal under the purpose "island/<id>/admin_token"; it never leaves internal/islands
-- in clear except inside a *garage.Client.
-- status is the last poll's verdict: unknown (never polled), healthy, degraded, unavailable
-- (Garage's own health statuses) or unreachable (the admin API failed; status_error says why).
CREATE TABLE islands (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    admin_endpoint      text NOT NULL,
    admin_token_sealed  text NOT NULL,
    s3_endpoint         text NOT NULL,
    s3_region           text NOT NULL CHECK (length(s3_region) BETWEEN 1 AND 100),
    replication_factor  int NOT NULL CHECK (replication_factor BETWEEN 1 AND 7),
    status              text NOT NULL DEFAULT 'unknown'
                        CHECK (status IN ('unknown', 'healthy', 'degraded', 'unavailable', 'unreachable')),
    status_error        text NOT NULL DEFAULT '',
    last_polled_at      timestamptz,
    last_ok_at          timestamptz,
    -- From the last successful poll: the applied layout's version and total storage capacity.
    layout_version      bigint,
    layout_capacity_bytes bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX islands_name_key ON islands (lower(name));

-- The member organisations that run an island (each one zone of it).
CREATE TABLE island_operators (
    island_id  bigint NOT NULL REFERENCES islands (id) ON DELETE CASCADE,
    member_id  bigint NOT NULL REFERENCES members (id) ON DELETE RESTRICT,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (island_id, member_id)
);
CREATE INDEX island_operators_member_idx ON island_operators (member_id);

-- A pledge: a member puts one Garage node (node_id, 64 hex) with capacity_bytes in zone at
-- the island's disposal, from since. withdrawn_at ends it.
-- status is derived by the poller from the live layout and cluster status:
--   pending   the node has no storage role in the applied layout
--   active    in the layout with at least the pledged capacity, and up
--   short     in the layout with less capacity than pledged
--   down      unreachable for longer than the poller's threshold (down_since says since when)
--   withdrawn the member withdrew it
-- layout_capacity_bytes and node_up are what the last poll saw (NULL: not in the layout / unknown).
CREATE TABLE pledges (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id             bigint NOT NULL REFERENCES members (id) ON DELETE RESTRICT,
    island_id             bigint NOT NULL REFERENCES islands (id) ON DELETE RESTRICT,
    node_id               text NOT NULL CHECK (node_id ~ '^[0-9a-f]{64}$'),
    zone                  text NOT NULL CHECK (length(zone) BETWEEN 1 AND 100),
    capacity_bytes        bigint NOT NULL CHECK (capacity_bytes > 0),
    since                 timestamptz NOT NULL DEFAULT now(),
    withdrawn_at          timestamptz,
    status                text NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'active', 'short', 'down', 'withdrawn')),
    status_detail         text NOT NULL DEFAULT '',
    status_changed_at     timestamptz NOT NULL DEFAULT now(),
    layout_capacity_bytes bigint,
    node_up               boolean,
    down_since            timestamptz,
    observed_at           timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'withdrawn') = (withdrawn_at IS NOT NULL))
);
-- One live pledge per node of an island.
CREATE UNIQUE INDEX pledges_live_node_key ON pledges (island_id, node_id) WHERE withdrawn_at IS NULL;
CREATE INDEX pledges_member_idx ON pledges (member_id);
CREATE INDEX pledges_island_idx ON pledges (island_id);

-- What each poll of an island saw (history for charts and the health record). ok=false rows
-- carry the error; the health and layout columns are then NULL.
CREATE TABLE island_observations (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    island_id             bigint NOT NULL REFERENCES islands (id) ON DELETE CASCADE,
    observed_at           timestamptz NOT NULL DEFAULT now(),
    ok                    boolean NOT NULL,
    error                 text NOT NULL DEFAULT '',
    health                text,
    known_nodes           int,
    connected_nodes       int,
    storage_nodes         int,
    storage_nodes_up      int,
    partitions            int,
    partitions_quorum     int,
    partitions_all_ok     int,
    layout_version        bigint,
    layout_capacity_bytes bigint,
    -- Per node: [{"id","hostname","zone","capacity","up","last_seen_secs_ago"}].
    nodes                 jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX island_observations_island_idx ON island_observations (island_id, observed_at DESC);
