/**
 * The dashboard's stylesheet and script, served by the handler itself (no CDN), each under a
 * URL carrying a hash of its content so browsers may cache it for good.
 *
 * @module
 */

import { JS } from "./_browser_script.ts";
import { CSS } from "./_styles.ts";

/** A short hash of a text, for cache-busting asset URLs (FNV-1a). */
function hashOf(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(36);
}

/** An asset: its content, type and versioned file name. */
export interface Asset {
  readonly body: string;
  readonly type: string;
  readonly file: string;
}

/** The assets by file name (below `assets/`). */
export const ASSETS: ReadonlyMap<string, Asset> = new Map(
  [
    { body: CSS, type: "text/css; charset=utf-8", file: `app.${hashOf(CSS)}.css` },
    { body: JS, type: "text/javascript; charset=utf-8", file: `app.${hashOf(JS)}.js` },
  ].map((asset) => [asset.file, asset]),
);

/** The versioned file names of the stylesheet and the script. */
export const STYLESHEET: string = [...ASSETS.keys()][0];
/** See {@linkcode STYLESHEET}. */
export const SCRIPT: string = [...ASSETS.keys()][1];
