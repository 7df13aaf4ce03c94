import { readFileSync } from 'node:fs';

/** One row of per-user data: column → value, all strings (they are filled into templates). */
export type DataRow = Record<string, string>;

/**
 * Reads the scenario's `data:` file: CSV with a header row (RFC 4180 quoting), or JSON (an array
 * of objects with scalar values). Throws an Error whose message says what is wrong; the loader
 * turns it into a problem at the `data` line.
 */
export function readDataFile(path: string): DataRow[] {
  const text = readFileSync(path, 'utf8');
  const rows = path.toLowerCase().endsWith('.json') ? parseJsonRows(text) : parseCsv(text);
  if (rows.length === 0) throw new Error('no data rows');
  return rows;
}

function parseJsonRows(text: string): DataRow[] {
  const doc = JSON.parse(text) as unknown;
  if (!Array.isArray(doc)) throw new Error('a JSON data file is an array of objects');
  return doc.map((row, i) => {
    if (!row || typeof row !== 'object' || Array.isArray(row)) throw new Error(`row ${i} is not an object`);
    const out: DataRow = {};
    for (const [k, v] of Object.entries(row)) {
      if (v !== null && typeof v === 'object') throw new Error(`row ${i}: ${k} is not a scalar`);
      out[k] = String(v);
    }
    return out;
  });
}

/** Fields of each record; quotes may hold commas, newlines and doubled quotes. */
function csvRecords(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let rec: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      rec.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      rec.push(field);
      if (rec.some((f) => f !== '')) records.push(rec);
      rec = [];
      field = '';
    } else field += c;
  }
  if (quoted) throw new Error('unterminated quote');
  rec.push(field);
  if (rec.some((f) => f !== '')) records.push(rec);
  return records;
}

export function parseCsv(text: string): DataRow[] {
  const [header, ...body] = csvRecords(text);
  if (!header) return [];
  const cols = header.map((h) => h.trim());
  if (cols.some((c) => !/^[A-Za-z_]\w*$/.test(c))) throw new Error(`header columns must be names (letters, digits, _): ${cols.join(',')}`);
  return body.map((fields, i) => {
    if (fields.length !== cols.length) throw new Error(`line ${i + 2}: ${fields.length} fields, header has ${cols.length}`);
    return Object.fromEntries(cols.map((c, k) => [c, fields[k]!]));
  });
}
