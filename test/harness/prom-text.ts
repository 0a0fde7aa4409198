// A strict parser of the Prometheus text exposition format (version 0.0.4), for tests: every
// line must be a HELP/TYPE line, a comment, blank, or a well-formed sample; a family's TYPE comes
// before its samples, at most once, and its samples are contiguous; series are unique;
// counters are non-negative; histogram buckets carry `le`, are cumulative and end in +Inf equal
// to _count. Any violation throws with the line number. (prom-client ships no parser, and
// Debian's promtool comes with the whole Prometheus server.)

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** As Prometheus reads values (Go's strconv.ParseFloat): NaN and Inf in any case, e.g. prom-client's "Nan". */
function parseValue(s: string, where: string): number {
  const l = s.toLowerCase();
  if (l === 'nan') return NaN;
  if (l === '+inf' || l === 'inf' || l === '+infinity' || l === 'infinity') return Infinity;
  if (l === '-inf' || l === '-infinity') return -Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`${where}: bad value "${s}"`);
  return Number(s);
}

/** Labels from just after `{` to the closing `}`; returns them and the index after `}`. */
function parseLabels(line: string, at: number, where: string): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  let i = at;
  for (;;) {
    if (line[i] === '}') return [labels, i + 1];
    const eq = line.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: label without '='`);
    const name = line.slice(i, eq).trim();
    if (!LABEL.test(name)) throw new Error(`${where}: bad label name "${name}"`);
    if (name in labels) throw new Error(`${where}: label ${name} repeated`);
    if (line[eq + 1] !== '"') throw new Error(`${where}: label value not quoted`);
    let v = '';
    let j = eq + 2;
    for (; j < line.length && line[j] !== '"'; j++) {
      if (line[j] !== '\\') {
        v += line[j];
        continue;
      }
      const e = line[++j];
      if (e === 'n') v += '\n';
      else if (e === '\\' || e === '"') v += e;
      else throw new Error(`${where}: bad escape \\${e}`);
    }
    if (j >= line.length) throw new Error(`${where}: unterminated label value`);
    labels[name] = v;
    i = j + 1;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') throw new Error(`${where}: expected ',' or '}' after a label`);
  }
}

function familyOf(sample: string, fams: Map<string, Family>): Family | undefined {
  const direct = fams.get(sample);
  if (direct) return direct;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sample.endsWith(suffix)) continue;
    const f = fams.get(sample.slice(0, -suffix.length));
    if (f && (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket'))) return f;
  }
  return undefined;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const fams = new Map<string, Family>();
  const series = new Set<string>();
  const closed = new Set<string>();
  let current: Family | undefined;
  const lines = text.split('\n');
  if (lines[lines.length - 1] !== '') throw new Error('exposition does not end with a newline');
  for (let n = 0; n < lines.length - 1; n++) {
    const line = lines[n];
    const where = `line ${n + 1}`;
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) continue; // a plain comment
      const [, kind, name, rest = ''] = m;
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name "${name}"`);
      if (closed.has(name)) throw new Error(`${where}: ${name} appears again after other families`);
      let f = fams.get(name);
      if (!f) {
        f = { name, type: 'untyped', help: '', samples: [] };
        fams.set(name, f);
      }
      if (current && current !== f) closed.add(current.name);
      current = f;
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`${where}: unknown type "${rest}"`);
        if (f.samples.length > 0) throw new Error(`${where}: TYPE of ${name} after its samples`);
        f.type = rest as MetricType;
      } else {
        f.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      }
      continue;
    }
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    const nameEnd = brace >= 0 && (space < 0 || brace < space) ? brace : space;
    if (nameEnd <= 0) throw new Error(`${where}: not a sample: "${line}"`);
    const name = line.slice(0, nameEnd);
    if (!NAME.test(name)) throw new Error(`${where}: bad metric name "${name}"`);
    let labels: Record<string, string> = {};
    let i = nameEnd;
    if (line[i] === '{') [labels, i] = parseLabels(line, i + 1, where);
    const fields = line.slice(i).trim().split(/\s+/);
    if (line[i] !== ' ' || fields.length < 1 || fields.length > 2) throw new Error(`${where}: expected ' value [timestamp]'`);
    const value = parseValue(fields[0], where);
    if (fields.length === 2 && !/^-?\d+$/.test(fields[1])) throw new Error(`${where}: bad timestamp "${fields[1]}"`);
    let f = familyOf(name, fams);
    if (!f) {
      if (closed.has(name)) throw new Error(`${where}: ${name} appears again after other families`);
      f = { name, type: 'untyped', help: '', samples: [] };
      fams.set(name, f);
    }
    if (f !== current) {
      if (closed.has(f.name)) throw new Error(`${where}: samples of ${f.name} are not contiguous`);
      if (current) closed.add(current.name);
      current = f;
    }
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;
    if (series.has(key)) throw new Error(`${where}: duplicate series ${key}`);
    series.add(key);
    if (f.type === 'counter' && !(value >= 0)) throw new Error(`${where}: counter ${name} is ${value}`);
    if (name.endsWith('_bucket') && f.type === 'histogram' && labels.le === undefined) throw new Error(`${where}: bucket without le`);
    f.samples.push({ name, labels, value });
  }
  for (const f of fams.values()) if (f.type === 'histogram') checkHistogram(f);
  return fams;
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, Sample[]>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const k = JSON.stringify(Object.entries(rest).sort());
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(s);
  }
  for (const g of groups.values()) {
    const buckets = g.filter((s) => s.name === `${f.name}_bucket`);
    const count = g.find((s) => s.name === `${f.name}_count`);
    let prev = -Infinity;
    let prevLe = -Infinity;
    for (const b of buckets) {
      const le = parseValue(b.labels.le, `${f.name} le`);
      if (le <= prevLe || b.value < prev) throw new Error(`${f.name}: buckets not cumulative at le=${b.labels.le}`);
      prev = b.value;
      prevLe = le;
    }
    if (buckets.length > 0 && (prevLe !== Infinity || count === undefined || count.value !== prev)) throw new Error(`${f.name}: +Inf bucket missing or != _count`);
  }
}

/** The value of the one sample of `name` whose labels include `labels`, or undefined. */
export function valueOf(fams: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = familyOf(name, fams);
  const hits = f?.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) ?? [];
  if (hits.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${hits.length} series`);
  return hits[0]?.value;
}
