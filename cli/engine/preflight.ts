import { readFileSync, readdirSync } from 'node:fs';

/**
 * Pre-flight checks of the generator host, read from /proc (Linux). A run that needs more file
 * descriptors or ephemeral ports than the host allows would report the host's limit as the
 * target's failure, so such a run is refused before it starts.
 */
export interface HostLimits {
  /** Soft RLIMIT_NOFILE of this process (ulimit -n); undefined off Linux. */
  fdLimit?: number;
  portRange?: { low: number; high: number; size: number };
  tcpTwReuse?: number;
}

export interface PreflightCheck {
  name: string;
  ok: boolean;
  /** Fatal checks make the run invalid (exit 2); the others are warnings. */
  fatal: boolean;
  message: string;
}

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    // Not Linux, or /proc hidden in a sandbox: the check reports "unknown" instead of failing.
    void err;
    return undefined;
  }
}

export function readHostLimits(): HostLimits {
  const limits: HostLimits = {};
  const lim = readProc('/proc/self/limits');
  const m = lim?.match(/^Max open files\s+(\d+|unlimited)/m);
  if (m) limits.fdLimit = m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
  const range = readProc('/proc/sys/net/ipv4/ip_local_port_range')?.trim().split(/\s+/).map(Number);
  if (range && range.length === 2 && range.every(Number.isFinite)) {
    limits.portRange = { low: range[0]!, high: range[1]!, size: range[1]! - range[0]! + 1 };
  }
  const tw = readProc('/proc/sys/net/ipv4/tcp_tw_reuse')?.trim();
  if (tw !== undefined && /^\d+$/.test(tw)) limits.tcpTwReuse = Number(tw);
  return limits;
}

/** Open file descriptors of this process right now; undefined where /proc is unavailable. */
export function openFdCount(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch (err) {
    void err;
    return undefined;
  }
}

/** Descriptors the runtime itself holds (stdio, libuv, vitest workers) beyond one per socket. */
const FD_MARGIN = 64;

export interface PreflightInput {
  peakConnections: number;
  /** New connections per second the run will open (arrival rate, or connect rate). */
  connRate: number;
  durationSec: number;
  sourceIpCount: number;
  targetIsLoopback: boolean;
}

export function runPreflight(input: PreflightInput, limits: HostLimits = readHostLimits()): PreflightCheck[] {
  const checks: PreflightCheck[] = [];
  if (limits.fdLimit !== undefined) {
    const need = input.peakConnections + FD_MARGIN;
    checks.push({
      name: 'fd_limit',
      ok: need <= limits.fdLimit,
      fatal: true,
      message:
        `ulimit -n is ${limits.fdLimit}; the run needs about ${need} descriptors (${input.peakConnections} sockets + ${FD_MARGIN})` +
        (need <= limits.fdLimit ? '' : ': raise it with `ulimit -n` or lower the connection count'),
    });
  }
  if (limits.portRange) {
    // Each (source ip, destination) pair has one port range; TIME_WAIT holds closed ports ~60 s.
    const perSource = limits.portRange.size;
    const capacity = perSource * Math.max(1, input.sourceIpCount);
    const churn = Math.min(input.connRate * Math.min(60, input.durationSec), Number.MAX_SAFE_INTEGER);
    const need = input.peakConnections + (limits.tcpTwReuse === 1 || (limits.tcpTwReuse === 2 && input.targetIsLoopback) ? 0 : churn);
    checks.push({
      name: 'ephemeral_ports',
      ok: input.peakConnections <= capacity,
      fatal: true,
      message:
        `ip_local_port_range ${limits.portRange.low}-${limits.portRange.high} gives ${perSource} ports per source address × ${Math.max(1, input.sourceIpCount)} source(s); peak ${input.peakConnections} connections` +
        (input.peakConnections <= capacity ? '' : ': add --source-ip addresses or lower the count'),
    });
    if (need > capacity && input.peakConnections <= capacity) {
      checks.push({
        name: 'time_wait',
        ok: false,
        fatal: false,
        message: `about ${Math.round(churn)} closed connections may sit in TIME_WAIT (tcp_tw_reuse=${limits.tcpTwReuse ?? 'unknown'}); EADDRNOTAVAIL errors would be the generator's, not the target's`,
      });
    }
  }
  if (limits.tcpTwReuse !== undefined) {
    checks.push({ name: 'tcp_tw_reuse', ok: true, fatal: false, message: `tcp_tw_reuse=${limits.tcpTwReuse}` });
  }
  return checks;
}
