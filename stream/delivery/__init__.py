"""Delivery of call events to other systems: the store sink and MQTT."""
