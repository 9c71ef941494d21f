import type { MonitoringServer } from '../monitoring/http-server';
import { TributaryError } from '../util/errors';

/** The monitoring port is taken: says which flag (or variable) picks another one. */
export class MetricsPortInUseError extends TributaryError {}

/**
 * Starts a command's monitoring server; a port clash (two `run --stage` processes on the default 9400)
 * becomes one line naming the flag, instead of a bare EADDRINUSE.
 */
export async function startMonitoringServer(server: MonitoringServer, where: { port: number; host: string; flag: string; env: string }): Promise<{ url: string }> {
  try {
    return await server.start();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new MetricsPortInUseError(
        `metrics port ${where.host}:${where.port} is already in use (another tributary process on this machine?); ` +
          `give each process its own with ${where.flag} PORT (or ${where.flag} 0 for any free port; env ${where.env})`,
      );
    }
    if (code === 'EADDRNOTAVAIL' || code === 'EACCES') throw new MetricsPortInUseError(`cannot bind the metrics server to ${where.host}:${where.port} (${code}); choose another with ${where.flag} or --metrics-host`);
    throw err;
  }
}
