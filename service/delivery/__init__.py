"""Delivery: the alert journal, then fan-out to dashboards, email, push, webhooks and MQTT."""
