-- ${var:orders} orders from ${var:customers} customers over 2025, generated deterministically.
SELECT
  value AS order_id,
  (value * 2654435761) % ${var:customers} + 1 AS customer_id,
  to_timestamp_seconds(1735689600 + (value % 365) * 86400 + (value * 7919) % 86400) AS ordered_at,
  CASE
    WHEN value % 50 = 0 THEN 'cancelled'
    WHEN value % 17 = 0 THEN 'returned'
    ELSE 'completed'
  END AS status,
  CAST((value * 104729) % 20000 AS DOUBLE) / 100.0 + 5.0 AS amount
FROM generate_series(1, ${var:orders})
