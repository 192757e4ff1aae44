SELECT
  c.customer_id,
  c.name,
  c.region,
  COUNT(o.order_id) AS orders,
  round(COALESCE(SUM(CASE WHEN o.status = 'completed' THEN o.paid END), 0), 2) AS lifetime_value,
  MIN(o.order_date) AS first_order,
  MAX(o.order_date) AS last_order
FROM stg.customers c
LEFT JOIN marts.orders o ON o.customer_id = c.customer_id
GROUP BY c.customer_id, c.name, c.region
