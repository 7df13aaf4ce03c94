/** The value after `--name` on a bench script's command line, or `fallback` when the flag is absent. */
export function arg(name: string, fallback: string): string;
export function arg(name: string): string | undefined;
export function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
}
