// The building blocks of the configuration schema: each key is a Field that
// holds its type, its default and its one-line doc, so defaults.ts can state
// the whole run's configuration in one declarative tree, and validation,
// command-line parsing and `--help` all read the same tree.

export type FieldKind = 'number' | 'integer' | 'string' | 'boolean' | 'enum' | 'stringList' | 'enumList';

export interface Field<T> {
  readonly isField: true;
  readonly kind: FieldKind;
  readonly default: T;
  readonly doc: string;
  /** null is an accepted value (e.g. "no model given"). */
  readonly nullable: boolean;
  /** For numbers: inclusive bounds. */
  readonly min?: number;
  readonly max?: number;
  /** For enum and enumList: the accepted strings. */
  readonly values?: readonly string[];
  /** For strings (and each list item): a pattern the value must match, with a word on what it means. */
  readonly pattern?: { re: RegExp; what: string };
}

export interface Section {
  readonly [key: string]: Field<unknown> | Section;
}

/** The plain value type a schema section describes. */
export type ValueOf<S> = {
  -readonly [K in keyof S]: S[K] extends Field<infer T> ? T : ValueOf<S[K]>;
};

export function isField(x: Field<unknown> | Section): x is Field<unknown> {
  return (x as Field<unknown>).isField === true;
}

interface NumOpts { min?: number; max?: number }

function field<T>(kind: FieldKind, def: T, doc: string, extra: Partial<Field<T>> = {}): Field<T> {
  return { isField: true, kind, default: def, doc, nullable: false, ...extra };
}

export function num(def: number, doc: string, o: NumOpts = {}): Field<number> {
  return field('number', def, doc, o);
}
export function int(def: number, doc: string, o: NumOpts = {}): Field<number> {
  return field('integer', def, doc, o);
}
export function bool(def: boolean, doc: string): Field<boolean> {
  return field('boolean', def, doc);
}
export function str(def: string, doc: string, pattern?: { re: RegExp; what: string }): Field<string> {
  return field('string', def, doc, { pattern });
}
/** A string that may be null (absent), default null. */
export function optStr(doc: string): Field<string | null> {
  return field<string | null>('string', null, doc, { nullable: true });
}
export function oneOf<const V extends readonly string[]>(values: V, def: V[number], doc: string): Field<V[number]> {
  return field('enum', def, doc, { values });
}
export function strList(def: string[], doc: string, pattern?: { re: RegExp; what: string }): Field<string[]> {
  return field('stringList', def, doc, { pattern });
}
/** A list of strings that may be null (absent), default null. */
export function optStrList(doc: string): Field<string[] | null> {
  return field<string[] | null>('stringList', null, doc, { nullable: true });
}
export function enumList<const V extends readonly string[]>(values: V, def: V[number][], doc: string): Field<V[number][]> {
  return field('enumList', def, doc, { values });
}

/** Every key of a schema as [dotted path, field], in declaration order. */
export function flattenSchema(s: Section, prefix = ''): [string, Field<unknown>][] {
  const out: [string, Field<unknown>][] = [];
  for (const [k, v] of Object.entries(s)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (isField(v)) out.push([path, v]);
    else out.push(...flattenSchema(v, path));
  }
  return out;
}

/** The defaults of a schema as a fresh plain object. */
export function defaultsOf<S extends Section>(s: S): ValueOf<S> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) {
    out[k] = isField(v) ? structuredClone(v.default) : defaultsOf(v);
  }
  return out as ValueOf<S>;
}

/** Human name of a field's type, as used in error messages and --help. */
export function typeName(f: Field<unknown>): string {
  let t: string;
  switch (f.kind) {
    case 'enum': t = f.values!.map((v) => `'${v}'`).join(' | '); break;
    case 'enumList': t = `list of (${f.values!.map((v) => `'${v}'`).join(' | ')})`; break;
    case 'stringList': t = 'list of strings'; break;
    default: t = f.kind;
  }
  return f.nullable ? `${t} or null` : t;
}
