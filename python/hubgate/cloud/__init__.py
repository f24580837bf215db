"""Cloud sync: the durable store-and-forward queue, local authorization, MQTT telemetry."""
