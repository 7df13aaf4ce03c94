/**
 * A reader for the Prometheus text exposition (format 0.0.4) that wsguard's own /metrics serves: the
 * status page's sampler reads the same numbers a scrape sees, so the page and Prometheus cannot
 * disagree. Only what that exposition contains is handled: `# ` comment lines, `name value` and
 * `name{k="v",…} value` with the escapes \\ \" \n in label values.
 */
export interface PromSample {
  labels: Record<string, string>;
  value: number;
}

export type PromFamilies = Map<string, PromSample[]>;

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq === -1) break;
    const key = text.slice(i, eq).trim();
    let j = eq + 2; // past '="'
    let value = '';
    while (j < text.length && text[j] !== '"') {
      if (text[j] === '\\' && j + 1 < text.length) {
        const next = text[j + 1];
        value += next === 'n' ? '\n' : next;
        j += 2;
      } else {
        value += text[j];
        j++;
      }
    }
    labels[key] = value;
    i = j + 1;
    if (text[i] === ',') i++;
  }
  return labels;
}

export function parsePromText(text: string): PromFamilies {
  const out: PromFamilies = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.lastIndexOf(' ');
    if (space === -1) continue;
    let name: string;
    let labels: Record<string, string> = {};
    if (brace !== -1 && brace < space) {
      name = line.slice(0, brace);
      labels = parseLabels(line.slice(brace + 1, line.lastIndexOf('}')));
    } else {
      name = line.slice(0, space);
    }
    const raw = line.slice(space + 1);
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    if (Number.isNaN(value)) continue;
    let family = out.get(name);
    if (!family) {
      family = [];
      out.set(name, family);
    }
    family.push({ labels, value });
  }
  return out;
}
