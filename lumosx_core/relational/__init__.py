"""The relational method itself, readable top to bottom: layout -> positions -> attention ->
self_attention / cross_attention -> forward."""
