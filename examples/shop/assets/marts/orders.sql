SELECT
  o.order_id,
  o.customer_id,
  o.order_date,
  o.status,
  o.amount,
  COALESCE(p.paid, 0) AS paid,
  COALESCE(p.payments, 0) AS payments
FROM stg.orders o
LEFT JOIN (
  SELECT order_id, SUM(amount) AS paid, COUNT(*) AS payments
  FROM stg.payments
  GROUP BY order_id
) p ON o.order_id = p.order_id
