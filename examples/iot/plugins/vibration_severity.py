"""Python twin of examples/iot/plugins/vibration-severity.ts (feature function iot.vibrationSeverity),
called by python/tributary_features when training computes the same vectors. Keep the two in step:
the same operations in the same order give the same float64 bits (SEMANTICS.md)."""

ALARM_LIMIT_MM_S = {"VX100": 4.5, "VX200": 7.1, "PT7": 2.8}
OUTDOOR_ALLOWANCE = 1.25


def vibration_severity(vibration_mm_s: float, device_model: str, indoor: bool):
    limit = ALARM_LIMIT_MM_S.get(device_model)
    if limit is None:
        return None
    # A negative reading is a sensor fault: severity 0 (NaN and +-inf pass through the division).
    v = 0.0 if vibration_mm_s < 0 else vibration_mm_s
    d = limit if indoor else limit * OUTDOOR_ALLOWANCE
    # IEEE division like JavaScript's: Python raises on x / 0, but the limits are never 0.
    return v / d
