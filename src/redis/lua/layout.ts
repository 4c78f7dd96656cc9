/**
 * Positional layouts shared by TypeScript and Lua, defined once. A script's arguments and
 * replies are flat arrays; a {@linkcode Layout} names their slots, and both sides are derived
 * from it: TypeScript writes arguments with {@linkcode pushRecord} and reads replies by
 * `layout.at.name`, and the Lua reads arguments through {@linkcode argvSlots} and builds replies
 * with {@linkcode luaTuple}. Adding, removing or moving a slot changes both at once.
 *
 * @module
 */

/** Named slots of a positional record. */
export interface Layout<F extends string> {
  /** The slot names, in order. */
  readonly fields: readonly F[];
  /** How many slots a record takes (the stride of a list of records). */
  readonly size: number;
  /** The 0-based position of each slot. */
  readonly at: Readonly<Record<F, number>>;
}

/**
 * Declares a layout.
 *
 * @param fields The slot names, in order.
 * @returns The layout.
 * @throws {TypeError} For a repeated name.
 */
export function layout<const F extends string>(...fields: F[]): Layout<F> {
  const at = {} as Record<F, number>;
  fields.forEach((f, i) => {
    if (f in at) throw new TypeError(`Cannot declare layout as slot '${f}' appears twice`);
    at[f] = i;
  });
  return { fields, size: fields.length, at };
}

/**
 * Appends a record's values to `out` in the layout's order.
 *
 * @param out The argument list being built.
 * @param l The layout.
 * @param record A value for every slot.
 */
export function pushRecord<F extends string, V>(
  out: V[],
  l: Layout<F>,
  record: Readonly<Record<F, V>>,
): void {
  // Indexed: a for-of loop makes an iterator per record until the function is optimized.
  const { fields } = l;
  for (let i = 0; i < fields.length; i++) out.push(record[fields[i]]);
}

/**
 * Lua expressions reading each slot of a record that starts at `base` in `array` (1-based, as
 * Lua indexes): `ARGV[base + offset]`. With a numeric base the index is a literal, `ARGV[4]`;
 * with a Lua expression (`'a'`, a local holding the record's first index), `ARGV[a + 2]`.
 *
 * @param l The layout.
 * @param base The 1-based index of the record's first slot, or a Lua expression for it.
 * @param array The Lua table read.
 * @returns Per slot, the expression reading it.
 */
export function argvSlots<F extends string>(
  l: Layout<F>,
  base: number | string,
  array = "ARGV",
): Readonly<Record<F, string>> {
  const out = {} as Record<F, string>;
  for (const f of l.fields) {
    const i = l.at[f];
    out[f] = typeof base === "number"
      ? `${array}[${base + i}]`
      : `${array}[${base}${i === 0 ? "" : ` + ${i}`}]`;
  }
  return out;
}

/**
 * A Lua table constructor listing an expression per slot, in the layout's order: a reply
 * record. Every slot must be given, so a record cannot lose a slot its readers expect.
 *
 * @param l The layout.
 * @param values Per slot, the Lua expression of its value.
 * @returns `{v1, v2, ...}`.
 */
export function luaTuple<F extends string>(
  l: Layout<F>,
  values: Readonly<Record<F, string>>,
): string {
  return `{${l.fields.map((f) => values[f]).join(", ")}}`;
}

/**
 * The index Lua reads a slot at in a table laid out by `l` (1-based).
 *
 * @param l The layout.
 * @param field The slot.
 * @returns Its 1-based position.
 */
export function luaIndex<F extends string>(l: Layout<F>, field: F): number {
  return l.at[field] + 1;
}

/**
 * A Lua table constructor for a record with only some slots: those up to the last one given,
 * with `false` (nil in the client) for the ones left out. For short answers, such as a task
 * that was not found.
 *
 * @param l The layout.
 * @param values Per slot given, the Lua expression of its value.
 * @returns `{v1, false, v3}`.
 */
export function luaPartialTuple<F extends string>(
  l: Layout<F>,
  values: Readonly<Partial<Record<F, string>>>,
): string {
  const given = l.fields.filter((f) => values[f] !== undefined);
  const last = Math.max(...given.map((f) => l.at[f]));
  return `{${l.fields.slice(0, last + 1).map((f) => values[f] ?? "false").join(", ")}}`;
}
