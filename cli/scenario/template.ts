/**
 * `${name}` templates of a scenario: per-user data columns, captured variables and the built-ins
 * below. Unknown names are found when the file is loaded (cli/scenario/load.ts), so at run time a
 * template only ever meets names it has.
 */
export const BUILTIN_VARS = Object.freeze({
  user: 'the virtual user index (0-based)',
  iter: 'the iteration of the innermost loop (0-based; 0 outside loops)',
  seq: 'messages this user has sent so far',
  ts: 'epoch milliseconds at the moment the template is filled',
});

const VAR = /\$\{([A-Za-z_]\w*)\}/g;

/** Names a template uses. */
export function templateVars(text: string): string[] {
  return [...text.matchAll(VAR)].map((m) => m[1]!);
}

export type Vars = Record<string, string>;

export function render(text: string, vars: Vars, escape?: (s: string) => string): string {
  return text.replace(VAR, (_, name: string) => {
    const v = name === 'ts' ? String(Date.now()) : (vars[name] ?? '');
    return escape ? escape(v) : v;
  });
}

export function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Every string leaf of a JSON value rendered; a leaf that is exactly one `${var}` keeps a number's type. */
export function renderJson(value: unknown, vars: Vars): unknown {
  if (typeof value === 'string') {
    const whole = /^\$\{([A-Za-z_]\w*)\}$/.exec(value);
    const out = render(value, vars);
    if (whole && out !== '' && Number.isFinite(Number(out)) && /^-?\d/.test(out)) return Number(out);
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => renderJson(v, vars));
  if (value && typeof value === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) o[k] = renderJson(v, vars);
    return o;
  }
  return value;
}

/** Every string inside a JSON value (for the load-time check of variable names). */
export function jsonStrings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) jsonStrings(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) jsonStrings(v, out);
  return out;
}

/**
 * A JSON path: `$.a.b[0]`, `a.b.0` or `a.b[0]`. Returns undefined when any segment is missing.
 */
export function jsonPath(root: unknown, path: string): unknown {
  const segs = path
    .replace(/^\$\.?/, '')
    .replace(/\[(\d+)\]/g, '.$1')
    .split('.')
    .filter((s) => s !== '');
  let cur: unknown = root;
  for (const s of segs) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[s];
  }
  return cur;
}
