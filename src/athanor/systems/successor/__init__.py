"""The successor-representation family: the discounted distribution of future states, one module per method."""
