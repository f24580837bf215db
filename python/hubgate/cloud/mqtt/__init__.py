"""MQTT 3.1.1 telemetry: a sans-IO client (`packets`, `client`) and a Trio publisher.

No existing library fits: paho-mqtt owns its sockets and threads, aiomqtt, gmqtt
and amqtt are asyncio-only, trio-paho-mqtt wraps paho and was last released in
2022, and the sans-IO ones (moat-lib-mqtt, mqtt5) speak MQTT 5 only. A
publishing 3.1.1 client is small.
"""
