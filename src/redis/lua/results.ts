/**
 * The Lua library's steps on stored results beyond storing them (`storeResult` in `./steps.ts`):
 * reading a result's header without decoding it, and keeping only the newest results of a
 * function (`keepResults`). The header's layout is defined in `src/payload/result_record.ts` and
 * `src/payload/envelope.ts`, whose constants are interpolated here; `tests/retention_test.ts`
 * checks this reading against records those modules wrote.
 *
 * @module
 */

import { KEY } from "../keys.ts";
import { luaFunction } from "./compose.ts";
import { ENVELOPE_KINDS } from "../../payload/envelope.ts";
import { RESULT_LAYOUT_VERSION } from "../../payload/result_record.ts";
import { SIGNATURE_LENGTH } from "../../payload/signing.ts";

const [STRING, BINARY] = ENVELOPE_KINDS.unsigned;
const [SIGNED_STRING, SIGNED_BINARY] = ENVELOPE_KINDS.signed;

/**
 * `resultHeader(value)`: how a stored result ended (a byte of `ENDED`), when it finished (ms)
 * and its function's name, read from its header; nil for a value cut short or of another layout.
 */
export const resultHeader = luaFunction(
  "resultHeader",
  [],
  `
-- Reads the header of a stored result: its ending byte (ENDED), its envelope's kind byte and
-- signature, then the record (result_record.ts): flags, then varints: created time, the enqueue,
-- start and finish times as zigzag differences, tries, and the function name's length and bytes.
-- Returns the ending byte, the finish time (ms) and the function name, or nil when value is cut
-- short or is not a result of this layout.
local function resultHeader(value)
  local kind, at = string.byte(value, 2), 3
  if kind == ${SIGNED_STRING} or kind == ${SIGNED_BINARY} then
    at = at + ${SIGNATURE_LENGTH}
  elseif kind ~= ${STRING} and kind ~= ${BINARY} then
    return nil
  end
  local flags = string.byte(value, at)
  if flags == nil or flags - flags % 16 ~= ${RESULT_LAYOUT_VERSION} then return nil end
  at = at + 1
  local finish, length = 0, 0
  for k = 1, 6 do
    local n, scale, b = 0, 1, 128
    while b >= 128 do
      b = string.byte(value, at)
      if b == nil then return nil end
      n = n + (b % 128) * scale
      scale = scale * 128
      at = at + 1
    end
    if k == 1 then
      finish = n
    elseif k <= 4 then
      -- zigzag: 0, 1, 2, 3 stand for 0, -1, 1, -2
      if n % 2 == 0 then finish = finish + n / 2 else finish = finish - (n + 1) / 2 end
    elseif k == 6 then
      length = n
    end
  end
  if at + length - 1 > #value then return nil end
  return string.sub(value, 1, 1), finish, string.sub(value, at, at + length - 1)
end
`,
);

/**
 * `keepNewestResults(P, id, result, keep)`: indexes the result just stored for task `id` under
 * its function (`KEY.kept`), by finish time, and removes that function's results beyond the
 * newest `keep`, oldest first, with their failed records (`KEY.failed`) and log lines (`KEY.logs`). Returns how many it
 * removed.
 */
export const keepNewestResults = luaFunction(
  "keepNewestResults",
  [resultHeader],
  `
-- Indexes the result just stored for task id (its encoded value: result) under its function, by
-- finish time, and removes the stored results of that function beyond the newest keep (a
-- number), oldest first, with the failed records kept to rerun them (KEY.failed) and their
-- log lines (KEY.logs). Ties (the same ms) go by task id. A value whose header cannot be read
-- is not indexed. Returns how many results it removed.
local function keepNewestResults(P, id, result, keep)
  local _, finish, fn = resultHeader(result)
  if fn == nil then return 0 end
  local index = P .. '${KEY.kept}' .. fn
  redis.call('ZADD', index, finish, id)
  local over = redis.call('ZCARD', index) - keep
  if over <= 0 then return 0 end
  local oldest = redis.call('ZPOPMIN', index, over)
  for j = 1, #oldest, 2 do
    redis.call('DEL', P .. '${KEY.result}' .. oldest[j], P .. '${KEY.failed}' .. oldest[j],
      P .. '${KEY.logs}' .. oldest[j])
  end
  return over
end
`,
);
