"""Random inspections (双随机、一公开): items, pools, plans, the draw, results and their publication."""
