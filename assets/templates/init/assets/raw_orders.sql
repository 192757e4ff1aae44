-- ${var:orders} deterministic orders over 200 customers and 90 days.
SELECT
  value AS order_id,
  (value * 7919) % 200 + 1 AS customer_id,
  DATE '2026-01-01' + CAST(value % 90 AS INT) AS order_date,
  CAST((value * 104729) % 10000 AS DOUBLE) / 100.0 AS amount
FROM generate_series(1, ${var:orders})
