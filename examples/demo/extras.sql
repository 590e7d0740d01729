-- The demo's additions to the shop dataset (examples/bench/dataset.sql):
-- what an assessment should flag, a partitioned table and a table without
-- a key, and the foreign key from orders to customers. Change data capture
-- needs a key or REPLICA IDENTITY FULL on every table it follows, so the
-- keyless audit_log gets the latter (the catalog lists tables with neither).
CREATE TABLE shop.events (
  id bigint NOT NULL, created_at timestamptz NOT NULL, kind text NOT NULL, payload jsonb,
  PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at);
CREATE TABLE shop.events_2024 PARTITION OF shop.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE shop.events_2025 PARTITION OF shop.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO shop.events
SELECT g, timestamptz '2024-01-01' + (g % 700) * interval '1 day', (ARRAY['view','cart','buy'])[1 + g % 3], jsonb_build_object('n', g)
FROM generate_series(1, {{ROWS}} / 10) g;
CREATE TABLE shop.audit_log (at timestamptz NOT NULL, actor text, line text);
INSERT INTO shop.audit_log SELECT now() - g * interval '1 minute', 'svc', 'event ' || g FROM generate_series(1, 1000) g;
ALTER TABLE shop.audit_log REPLICA IDENTITY FULL;
ALTER TABLE shop.orders ADD FOREIGN KEY (customer_id) REFERENCES shop.customers (id);
ANALYZE;
