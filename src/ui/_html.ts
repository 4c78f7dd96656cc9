/**
 * HTML built from tagged templates that escape every interpolated value, so a value read from
 * Redis can never become markup: only {@linkcode Html} values (built by {@linkcode html}
 * itself) are inserted as they are.
 *
 * @module
 */

/** A piece of HTML that is safe to insert as it is. */
export class Html {
  constructor(readonly value: string) {}

  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for HTML content and for quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/**
 * Builds HTML: each value is escaped, except {@linkcode Html} values; arrays are concatenated;
 * `null`, `undefined` and `false` insert nothing.
 */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new Html(out);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.value;
  if (value === null || value === undefined || value === false) return "";
  if (Array.isArray(value)) return value.map(render).join("");
  return escapeHtml(String(value));
}

/** Inserts a trusted, constant string as HTML (never use it for data). */
export function raw(trusted: string): Html {
  return new Html(trusted);
}
