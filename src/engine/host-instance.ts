import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isPidAlive } from '../util/process-alive';

/**
 * The default instance id of a `tributary run` process: `<host>-<slot>`, the slot being the lowest
 * one no live process on this host holds for the same topology (a pid file under
 * `$TRIBUTARY_HOME/instances/<host>/`).
 *
 * Why not random per start: shared transactions abort a crashed process's open transaction at once
 * only when its successor initialises the same transactional ids; with a fresh random id the broker's
 * transaction timeout does it, and until then the new owners of the dead process's partitions wait
 * on unstable offsets (seconds of no output after every crash). A restart on the same host — a
 * container restarted in its pod, a systemd unit, a developer's Ctrl-C — gets the same slot back,
 * as Kafka Streams keeps its process id in its state directory. Two processes on one host get
 * different slots, so they never fence each other; across hosts the host name tells them apart.
 */
export interface HostInstanceClaim {
  /** `<host>-<slot>`, a valid instance id. */
  id: string;
  /** The pid file holding the slot; undefined when the directory was not writable (random id). */
  file?: string;
  /** Gives the slot back (the file is removed if it is still ours). Idempotent. */
  release(): void;
}

export interface HostInstanceOptions {
  /** The instances directory, e.g. `$TRIBUTARY_HOME/instances`. */
  dir: string;
  /** What the slots are scoped to (the topology's name: its groups prefix the transactional ids). */
  scope: string;
  /** Default os.hostname(). */
  hostname?: string;
  /** Default process.pid. */
  pid?: number;
  /** At most this many slots are tried (default 64). */
  maxSlots?: number;
}

export class NoFreeInstanceSlotError extends Error {
  constructor(dir: string, maxSlots: number) {
    super(`no free instance slot under ${dir}: ${maxSlots} live processes hold one (give this process --instance-id)`);
    this.name = 'NoFreeInstanceSlotError';
  }
}

/** The host part: the host name in the instance-id charset, bounded so that `-<slot>` still fits 64 characters. */
export function hostPart(hostname: string): string {
  const cleaned = hostname.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 56);
  return cleaned.length ? cleaned : 'host';
}

/**
 * Claims the lowest free slot. A slot is free when its pid file is missing, or names a process that
 * no longer exists, or names this very process (a container's pid 1 restarted with the same volume:
 * the file is its predecessor's). Creation is exclusive (`wx`), so two processes starting at once
 * never get the same slot. Throws only NoFreeInstanceSlotError; an unwritable directory is the
 * caller's to handle (it throws the fs error).
 */
export function claimHostInstance(opts: HostInstanceOptions): HostInstanceClaim {
  const host = hostPart(opts.hostname ?? os.hostname());
  const pid = opts.pid ?? process.pid;
  const maxSlots = opts.maxSlots ?? 64;
  const dir = path.join(opts.dir, host);
  fs.mkdirSync(dir, { recursive: true });
  const scope = opts.scope.replace(/[^A-Za-z0-9._-]/g, '_');
  for (let slot = 0; slot < maxSlots; slot++) {
    const file = path.join(dir, `${scope}.${slot}.pid`);
    if (!takeSlotFile(file, pid)) continue;
    let released = false;
    return {
      id: `${host}-${slot}`,
      file,
      release: () => {
        if (released) return;
        released = true;
        try {
          if (readPid(file) === pid) fs.unlinkSync(file);
        } catch {
          // Already gone: nothing to give back.
        }
      },
    };
  }
  throw new NoFreeInstanceSlotError(dir, maxSlots);
}

/**
 * Creates the slot's pid file, or takes it over when its holder is gone; false when a live process
 * holds it (or another starting process is taking it over right now). A takeover overwrites the
 * file in place under a `mkdir` lock (atomic), never removes it, so a process creating the file with
 * `wx` and one taking it over cannot both win.
 */
function takeSlotFile(file: string, pid: number): boolean {
  try {
    fs.writeFileSync(file, `${pid}\n`, { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (heldByOther(file, pid)) return false;
  const lock = `${file}.takeover`;
  try {
    fs.mkdirSync(lock);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // A takeover in progress, or one whose process died mid-way (a lock older than a minute): that
    // slot is skipped this time and its lock cleared for the next start.
    try {
      if (Date.now() - fs.statSync(lock).mtimeMs > 60_000) fs.rmSync(lock, { recursive: true, force: true });
    } catch {
      // Gone meanwhile: the other takeover finished.
    }
    return false;
  }
  try {
    if (heldByOther(file, pid)) return false;
    fs.writeFileSync(file, `${pid}\n`);
    return true;
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

/** A live process other than `pid` holds the slot file (an unreadable file counts as stale). */
function heldByOther(file: string, pid: number): boolean {
  const holder = readPid(file);
  return holder !== undefined && holder !== pid && isPidAlive(holder);
}

function readPid(file: string): number | undefined {
  try {
    const n = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

