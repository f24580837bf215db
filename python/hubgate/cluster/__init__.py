"""Two gateways, one site: leadership, the replicated queue and the fleet link on NATS JetStream."""
