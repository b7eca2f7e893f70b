"""The relational method itself, readable top to bottom: layout -> positions -> attention ->
self_attention / cross_attention -> forward; ``host_call`` runs it inside a host's model call
(guard, checks, the host's later wrappers)."""
