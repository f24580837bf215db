"""A stationary battery: a power setpoint within its power and state-of-charge limits."""

from __future__ import annotations

from dataclasses import dataclass

from hubgate.config.model import Battery


@dataclass
class BatteryModel:
    """Power is positive when charging; `setpoint_kw` is what a controller writes."""

    id: str
    node: int
    capacity_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    min_soc: float
    max_soc: float
    soc: float
    setpoint_kw: float = 0.0
    power_kw: float = 0.0

    @classmethod
    def from_config(cls, battery: Battery, node: int, soc_percent: float) -> BatteryModel:
        """A battery from the site file, at `soc_percent` state of charge."""
        return cls(
            id=battery.id,
            node=node,
            capacity_kwh=battery.capacity_kwh,
            max_charge_kw=battery.max_charge_kw,
            max_discharge_kw=battery.max_discharge_kw,
            min_soc=battery.min_soc_percent / 100.0,
            max_soc=battery.max_soc_percent / 100.0,
            soc=soc_percent / 100.0,
        )

    def step(self, dt: float) -> float:
        """Charge or discharge for `dt` seconds as far as the limits allow; the power."""
        power = min(max(self.setpoint_kw, -self.max_discharge_kw), self.max_charge_kw)
        if power > 0:
            room_kwh = (self.max_soc - self.soc) * self.capacity_kwh
            power = min(power, max(room_kwh, 0.0) * 3600.0 / dt)
        elif power < 0:
            left_kwh = (self.soc - self.min_soc) * self.capacity_kwh
            power = max(power, -max(left_kwh, 0.0) * 3600.0 / dt)
        self.soc += power * dt / 3600.0 / self.capacity_kwh
        self.power_kw = power
        return power
