/**
 * Option checks shared by the worker, task registration and enqueueing. Every message names
 * the option and shows the value received with its type, so a mistake is found at
 * construction, registration or enqueue, never later inside `run()`.
 *
 * @module
 */

/** Shows a received value and its type for an error message: `-5 (number)`. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return `"${value}" (string)`;
  if (typeof value === "function") return `function ${value.name || "(anonymous)"}`;
  if (value instanceof Date) {
    return `Date ${isNaN(value.getTime()) ? "Invalid Date" : value.toISOString()}`;
  }
  if (typeof value === "object") {
    const name = Object.getPrototypeOf(value)?.constructor?.name ?? "Object";
    let text: string;
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
    return `${text.length > 60 ? text.slice(0, 57) + "..." : text} (${name})`;
  }
  return `${String(value)} (${typeof value})`;
}

/** Throws a RangeError unless `value` is undefined or a finite number ≥ `min`. */
export function checkDuration(
  where: string,
  option: string,
  value: unknown,
  { min = 0, allowNull = false } = {},
): void {
  if (value === undefined || (allowNull && value === null)) return;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new RangeError(
      `Cannot ${where} as '${option}' must be a number of milliseconds ≥ ${min}${
        allowNull ? " or null" : ""
      }: received ${describe(value)}`,
    );
  }
}

/** Throws a RangeError unless `value` is undefined or an integer ≥ `min`. */
export function checkInteger(where: string, option: string, value: unknown, min: number): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new RangeError(
      `Cannot ${where} as '${option}' must be an integer ≥ ${min}: received ${describe(value)}`,
    );
  }
}

/** Throws a TypeError unless `value` is undefined or a non-empty string without spaces. */
export function checkName(where: string, option: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== "string" || value.length === 0 || /\s/.test(value)) {
    throw new TypeError(
      `Cannot ${where} as '${option}' must be a non-empty string without spaces: received ${
        describe(value)
      }`,
    );
  }
}

/**
 * Throws a TypeError naming the first key of `options` that is not in `known`; `qualifier`
 * follows `where` in the message (`with 'dedupe'`), joined only for an error. It allocates
 * nothing when every key is known: start options are checked for each task of a batch.
 */
export function checkKnownKeys(
  where: string,
  options: object,
  known: readonly string[],
  qualifier = "",
): void {
  for (const key in options) {
    if (Object.hasOwn(options, key) && !known.includes(key)) {
      throw new TypeError(
        `Cannot ${where}${qualifier} as '${key}' is not an option: expected one of ${
          known.join(", ")
        }`,
      );
    }
  }
}
