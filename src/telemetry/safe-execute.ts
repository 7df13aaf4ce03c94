/**
 * Runs `execute` and returns its result; if it throws, `onError` is told and `fallback` returned
 * instead. Telemetry hooks run inside the gateway's request and message paths, so a failing exporter,
 * meter or span must cost the data point, never the connection (the shape of OpenTelemetry JS's
 * `safeExecuteInTheMiddle` in @opentelemetry/instrumentation). `onError` itself must not throw; if it
 * does, that error is dropped here rather than thrown into the gateway.
 */
export function safeExecute<T>(execute: () => T, onError: (err: unknown) => void, fallback: T): T {
  try {
    return execute();
  } catch (err) {
    try {
      onError(err);
    } catch {
      // The error reporter failed too (a broken logger): nothing is left to tell, and the gateway goes on.
    }
    return fallback;
  }
}
