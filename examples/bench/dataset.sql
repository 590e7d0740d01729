-- Benchmark source: an order-history schema of realistic width, the same
-- tables, types and sizes as ../shared/bench/dataset.sql (customers and orders
-- of the shop dataset, which the demo seeds too, adding examples/demo/extras.sql).
-- {{ROWS}} is the number of orders; customers are a sixth of it.
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
FROM generate_series(1, ({{ROWS}})::bigint / 6) g;
INSERT INTO shop.orders
SELECT g, 1 + g % (({{ROWS}})::bigint / 6), (ARRAY['new','paid','shipped','cancelled'])[1 + g % 4],
       (g % 100000) / 100.0, 'EUR', timestamptz '2021-01-01' + g * interval '11 seconds',
       CASE WHEN g % 3 = 0 THEN timestamptz '2021-01-02' + g * interval '11 seconds' END,
       CASE WHEN g % 5 = 0 THEN repeat('note ', 10) END,
       jsonb_build_array(jsonb_build_object('sku', 'SKU-' || g % 997, 'qty', 1 + g % 3, 'price', (g % 5000) / 100.0))
FROM generate_series(1, ({{ROWS}})::bigint) g;
ANALYZE;
