/**
 * The little of Markdown that the docs checker needs: fenced code blocks with their language
 * and line, links and images outside code, and the anchors GitHub gives headings.
 *
 * @module
 */

/** A fenced code block of a Markdown file. */
export interface CodeBlock {
  /** The info string's first word, lower-cased (`ts`, `json`, `sh`), or `""`. */
  lang: string;
  /** 1-based line of the opening fence; the block's first line is `line + 1`. */
  line: number;
  /** The lines between the fences, joined with `\n`. */
  text: string;
}

/** A link or image target found outside code. */
export interface LinkRef {
  /** The target as written, for example `docs/testing.md#testing-your-tasks`. */
  target: string;
  /** 1-based line where it was written. */
  line: number;
  /** Whether it is an image (`![alt](target)`). */
  image: boolean;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/;

/** The fenced code blocks of `markdown`, in order. An unclosed fence runs to the end. */
export function codeBlocks(markdown: string): CodeBlock[] {
  const lines = markdown.split("\n");
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(FENCE);
    if (!open) continue;
    const fence = open[1];
    const body: string[] = [];
    let j = i + 1;
    // A closing fence uses the same character, at least as many times, and nothing else.
    const close = new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`);
    for (; j < lines.length && !close.test(lines[j]); j++) body.push(lines[j]);
    blocks.push({ lang: open[2].toLowerCase(), line: i + 1, text: body.join("\n") });
    i = j;
  }
  return blocks;
}

/** `markdown` with every fenced block's lines blanked, so line numbers stay the same. */
function withoutCodeBlocks(markdown: string): string[] {
  const lines = markdown.split("\n");
  for (const block of codeBlocks(markdown)) {
    const count = block.text === "" ? 0 : block.text.split("\n").length;
    for (let k = block.line - 1; k <= block.line + count && k < lines.length; k++) lines[k] = "";
  }
  return lines;
}

/** Inline code spans removed (their contents are not links). */
function withoutCodeSpans(line: string): string {
  return line.replace(/(`+)[^`]*?\1/g, "");
}

/**
 * The link and image targets of `markdown` outside fenced blocks and code spans: inline ones
 * (`[text](target)`, `![alt](target "title")`) and reference definitions (`[name]: target`).
 */
export function links(markdown: string): LinkRef[] {
  const found: LinkRef[] = [];
  withoutCodeBlocks(markdown).forEach((raw, index) => {
    const line = withoutCodeSpans(raw);
    for (const match of line.matchAll(/(!?)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?/g)) {
      found.push({ target: match[2], line: index + 1, image: match[1] === "!" });
    }
    const definition = line.match(/^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/);
    if (definition) found.push({ target: definition[1], line: index + 1, image: false });
  });
  return found;
}

/**
 * The anchors GitHub (and JSR, which follows it) gives the headings of `markdown`: the text
 * lower-cased, punctuation dropped, spaces turned into hyphens, `-1`, `-2`... on repeats.
 */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of withoutCodeBlocks(markdown)) {
    const heading = line.match(/^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/);
    if (!heading) continue;
    const slug = slugify(heading[1]);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** The anchor of one heading's text. */
export function slugify(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // a link or image counts by its text
    .replace(/<[^>]+>/g, ""); // inline HTML tags do not count
  return text.trim().toLowerCase().replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, "").replace(/\s/g, "-");
}
