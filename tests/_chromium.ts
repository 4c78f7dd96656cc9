/**
 * Where the browser tests find Chromium: the executable that `CHROME_PATH` names (the variable
 * chrome-launcher and Lighthouse read, so a machine set up for them needs nothing more), else the
 * first of the usual install locations that exists. No browser is downloaded: playwright-core
 * drives the one installed.
 *
 * The browser tests run under the `test` permission set of `tests/tools.json`, whose `run` list
 * holds every path of {@linkcode CHROMIUM_LOCATIONS}; a `CHROME_PATH` elsewhere must be added to
 * it, and {@linkcode findChromium} says so rather than let the launch fail on a bare NotCapable.
 *
 * @module
 */

/** The environment variable naming the Chromium or Chrome executable to drive. */
export const CHROME_PATH_VARIABLE = "CHROME_PATH";

/** The usual install locations, in the order they are tried. */
export const CHROMIUM_LOCATIONS: readonly string[] = [
  "/usr/bin/chromium", // Debian (apt-get install chromium)
  "/usr/bin/chromium-browser", // Ubuntu, Fedora
  "/usr/bin/google-chrome", // Google's own packages
  "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
  "/Applications/Chromium.app/Contents/MacOS/Chromium",
];

const PERMISSION_SET = `the "run" list of the "test" permission set in tests/tools.json`;

const INSTALL_HINT = "Install Chromium (Debian/Ubuntu: sudo apt-get install chromium) or Google " +
  "Chrome (macOS: brew install --cask google-chrome), or set CHROME_PATH to a Chromium or Chrome " +
  `executable and add that path to ${PERMISSION_SET}.`;

/** Where {@linkcode findChromium} looks; by default `CHROME_PATH` and the usual locations. */
export interface ChromiumSearch {
  /** The executable to use; when the key is absent, `CHROME_PATH` from the environment. */
  chromePath?: string | undefined;
  /** The locations tried when no path is given. @default {CHROMIUM_LOCATIONS} */
  locations?: readonly string[];
}

/**
 * The path of the Chromium to drive.
 *
 * @throws {Error} When `CHROME_PATH` names no file or a path the permission set does not let the
 * tests run, or when no usual location holds a browser: the message says what is missing and how
 * to install it.
 */
export async function findChromium(search: ChromiumSearch = {}): Promise<string> {
  const given = Object.hasOwn(search, "chromePath")
    ? search.chromePath
    : Deno.env.get(CHROME_PATH_VARIABLE);
  // A given path is never skipped for a usual one: a typo would otherwise test another browser.
  if (given) return await checkedChromePath(given);
  const locations = search.locations ?? CHROMIUM_LOCATIONS;
  for (const path of locations) {
    if (await isFile(path)) return path;
  }
  throw new Error(
    `Cannot run the browser tests as no Chromium was found: ${CHROME_PATH_VARIABLE} is not set ` +
      `and none of ${locations.join(", ")} exists. ${INSTALL_HINT}`,
  );
}

async function checkedChromePath(path: string): Promise<string> {
  if (!await isFile(path)) {
    throw new Error(
      `Cannot run the browser tests as ${CHROME_PATH_VARIABLE} must name a Chromium or Chrome ` +
        `executable: received "${path}", which is not a file. ${INSTALL_HINT}`,
    );
  }
  const { state } = await Deno.permissions.query({ name: "run", command: path });
  if (state !== "granted") {
    throw new Error(
      `Cannot run the browser tests as ${CHROME_PATH_VARIABLE} must be a path in ` +
        `${PERMISSION_SET}: received "${path}" (${state}). Add it there.`,
    );
  }
  return path;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return false;
    }
    throw error;
  }
}
