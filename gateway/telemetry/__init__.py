"""What the branch reports about itself.

Periodic business reports over MQTT and the branch's /ops page.
"""
