-- The shop dataset: customers and orders of realistic width (the same tables,
-- types and sizes as the benchmark peers use). {{ROWS}} is the number of orders.
DROP SCHEMA IF EXISTS shop CASCADE;
CREATE SCHEMA shop;
CREATE TABLE shop.customers (
  id bigint PRIMARY KEY, email text NOT NULL, full_name text, country char(2),
  created_at timestamptz NOT NULL, tags text[], profile jsonb);
CREATE TABLE shop.orders (
  id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL,
  amount numeric(12,2) NOT NULL, currency char(3) NOT NULL, created_at timestamptz NOT NULL,
  shipped_at timestamptz, note text, lines jsonb);
INSERT INTO shop.customers
SELECT g, 'user' || g || '@example.com', 'Customer ' || md5(g::text), (ARRAY['US','DE','FR','JP','BR'])[1 + g % 5],
       timestamptz '2020-01-01' + g * interval '37 seconds', ARRAY['t' || g % 7, 't' || g % 11],
       jsonb_build_object('tier', g % 4, 'newsletter', g % 2 = 0)
FROM generate_series(1, {{ROWS}} / 6) g;
INSERT INTO shop.orders
SELECT g, 1 + g % ({{ROWS}} / 6), (ARRAY['new','paid','shipped','cancelled'])[1 + g % 4],
       (g % 100000) / 100.0, 'EUR', timestamptz '2021-01-01' + g * interval '11 seconds',
       CASE WHEN g % 3 = 0 THEN timestamptz '2021-01-02' + g * interval '11 seconds' END,
       CASE WHEN g % 5 = 0 THEN repeat('note ', 10) END,
       jsonb_build_array(jsonb_build_object('sku', 'SKU-' || g % 997, 'qty', 1 + g % 3, 'price', (g % 5000) / 100.0))
FROM generate_series(1, {{ROWS}}) g;
ANALYZE;
-- What an assessment should flag: a partitioned table and a table without a key.
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
ALTER TABLE shop.orders ADD FOREIGN KEY (customer_id) REFERENCES shop.customers (id);
ANALYZE;
