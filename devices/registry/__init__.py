"""Device registry: state, levels and counters of every device, as retained telemetry."""

from devices.registry.errors import PublishError, RegistryError, UnknownDeviceError
from devices.registry.publisher import MqttPublisher
from devices.registry.registry import DeviceRegistry, Publisher, levels_of, status_problem
from devices.registry.settings import DevicesSettings, EncoderSettings, PrinterSettings

__all__ = [
    "DeviceRegistry",
    "DevicesSettings",
    "EncoderSettings",
    "MqttPublisher",
    "PrinterSettings",
    "PublishError",
    "Publisher",
    "RegistryError",
    "UnknownDeviceError",
    "levels_of",
    "status_problem",
]
