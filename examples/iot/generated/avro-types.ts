// Generated from examples/iot/schemas/*.avsc by `npm run gen:types`. Do not edit by hand.
/* eslint-disable */

export interface SensorReading {
  /** Unique id; also the Kafka message key (predictions and labels join on it). */
  readingId: string;
  /** Sensor unit, e.g. dev-00042: entity of the device_profile and device_activity feature sets. */
  deviceId: string;
  /** Plant the unit is installed in: entity of the site_climate feature set. */
  siteId: string;
  deviceModel: DeviceModel;
  /** Firmware version string as reported by the unit, e.g. 4.2.1 (an open category: new releases appear). */
  firmware: string;
  /** When the unit sampled (ms since epoch). */
  eventTime: number;
  /** Housing temperature, degrees Celsius. */
  temperatureC: number;
  /** Vibration velocity RMS, mm/s (ISO 10816). */
  vibrationMmS: number;
  /** Line pressure, kPa; null on units without a pressure probe. */
  pressureKpa?: null | number;
  /** Battery charge 0-100; null on mains-powered units. */
  batteryPct?: null | number;
  location: Location;
}

export type DeviceModel = 'VX100' | 'VX200' | 'PT7' | 'UNKNOWN';

export interface Location {
  building: string;
  floor: number;
  /** Free-text zone label (line, room), e.g. line-3. */
  zone: string;
  indoor: boolean;
  /** IANA time zone of the site, e.g. Europe/Berlin (shifts follow local time). */
  timezone: string;
}

/** Schema file name (examples/iot/schemas/<name>.avsc) -> the TypeScript type of its records. */
export interface SchemaTypes {
  'sensor-reading': SensorReading;
}
