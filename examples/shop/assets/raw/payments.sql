SELECT
  order_id * 10 AS payment_id,
  order_id,
  CASE order_id % 4 WHEN 0 THEN 'card' WHEN 1 THEN 'card' WHEN 2 THEN 'paypal' ELSE 'bank_transfer' END AS method,
  CASE WHEN order_id % 10 = 0 THEN amount / 2 ELSE amount END AS amount,
  ordered_at AS paid_at
FROM raw.orders
WHERE status <> 'cancelled'
UNION ALL
SELECT
  order_id * 10 + 1 AS payment_id,
  order_id,
  'gift_card' AS method,
  amount / 2 AS amount,
  ordered_at AS paid_at
FROM raw.orders
WHERE status <> 'cancelled' AND order_id % 10 = 0
