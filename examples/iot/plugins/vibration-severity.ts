/**
 * IoT example plugin: a feature function the declarative definitions call like a built-in operator,
 *
 *   - name: vibration_severity
 *     expr: { iot.vibrationSeverity: [vibrationMmS, deviceModel, location.indoor] }
 *
 * Vibration RMS as a fraction of the alarm limit of the unit's machine class (ISO 10816-3 style
 * zones, per device model), with a 25 % allowance outdoors (units on flexible mounts). Its Python
 * twin (vibration_severity.py beside this file) computes the same float64 for training: only
 * IEEE-754 operations (comparisons, multiply, divide) in the same order, so the bits agree exactly.
 * Loaded by a topology's `plugins:`; see README "Plugins" and SEMANTICS.md "Plugin feature functions".
 */
import { defineFeatureFunction, definePlugin } from 'tributary';

/** Alarm limit (mm/s RMS) per device model; an unknown model has no limit, so no severity (null). */
const ALARM_LIMIT_MM_S: Readonly<Record<string, number>> = { VX100: 4.5, VX200: 7.1, PT7: 2.8 };
const OUTDOOR_ALLOWANCE = 1.25;

export const vibrationSeverity = defineFeatureFunction({
  name: 'iot.vibrationSeverity',
  summary: 'Vibration RMS as a fraction of the device model\'s alarm limit (outdoor units get 25 % more).',
  args: [
    { name: 'vibrationMmS', type: 'double' },
    { name: 'deviceModel', type: 'string' },
    { name: 'indoor', type: 'boolean' },
  ],
  returns: 'double',
  deterministic: true,
  sideEffects: false,
  compute(vibrationMmS: number, deviceModel: string, indoor: boolean): number | null {
    const limit = Object.prototype.hasOwnProperty.call(ALARM_LIMIT_MM_S, deviceModel) ? ALARM_LIMIT_MM_S[deviceModel] : undefined;
    if (limit === undefined) return null;
    // A negative reading is a sensor fault: severity 0 (NaN and ±∞ pass through the division).
    const v = vibrationMmS < 0 ? 0 : vibrationMmS;
    return v / (indoor ? limit : limit * OUTDOOR_ALLOWANCE);
  },
  python: './vibration_severity.py:vibration_severity',
});

export default definePlugin({ name: 'iot-vibration', functions: [vibrationSeverity] });
