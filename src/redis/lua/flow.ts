/**
 * Flow control in Lua: what the claim scripts (fetch and completion) do about pauses. Both read
 * the pauses once per call ({@linkcode readPauses}: one `HKEYS` that finds nothing while nothing
 * is paused, so the feature unused costs one cheap command per call and nothing per task). A
 * paused queue claims nothing; a delivery of a paused function is set aside in that function's
 * held list ({@linkcode holdIfPaused}) without counting a try, and goes back to its stream when
 * the function is resumed (`src/client/pause.ts`).
 *
 * @module
 */

import { KEY, PAUSED_FUNCTION, PAUSED_QUEUE, TASK_FIELD } from "../keys.ts";
import { luaFunction } from "./compose.ts";

/**
 * `readPauses(P)`: the pauses in force on the queue whose key prefix is `P`: nil while nothing
 * is paused, else `{ queue = <whole queue paused>, functions = {name = true}, heldPrefix }`.
 */
export const readPauses = luaFunction(
  "readPauses",
  [],
  `
-- The pauses in force on the queue of key prefix P: nil when nothing is paused (one HKEYS of a
-- missing key), else a table: queue (the whole queue is paused), functions (a set of the paused
-- function names) and heldPrefix (the prefix of their held lists).
local function readPauses(P)
  local fields = redis.call('HKEYS', P .. '${KEY.paused}')
  if #fields == 0 then return nil end
  local pauses = { queue = false, functions = {}, heldPrefix = P .. '${KEY.held}' }
  for _, f in ipairs(fields) do
    if f == '${PAUSED_QUEUE}' then
      pauses.queue = true
    elseif string.sub(f, 1, ${PAUSED_FUNCTION.length}) == '${PAUSED_FUNCTION}' then
      pauses.functions[string.sub(f, ${PAUSED_FUNCTION.length + 1})] = true
    end
  end
  return pauses
end
`,
);

/**
 * `holdIfPaused(pauses, taskKey, stream, group, entryId, id)`: sets a just-claimed delivery
 * aside if its function is paused: its task id goes to the end of the function's held list and
 * its entry is acknowledged and deleted. Its try is not counted (nothing was started). Returns
 * whether it was set aside.
 */
export const holdIfPaused = luaFunction(
  "holdIfPaused",
  [],
  `
-- Sets the delivery entryId of stream (task id, hash taskKey) aside when its function is among
-- pauses.functions (see readPauses): the id goes to the end of that function's held list, the
-- entry is acknowledged and deleted, no try is counted. Returns true if it was set aside.
local function holdIfPaused(pauses, taskKey, stream, group, entryId, id)
  if next(pauses.functions) == nil then return false end
  local fn = redis.pcall('HGET', taskKey, '${TASK_FIELD.fn}')
  if type(fn) ~= 'string' or not pauses.functions[fn] then return false end
  redis.call('RPUSH', pauses.heldPrefix .. fn, id)
  redis.call('XACK', stream, group, entryId)
  redis.call('XDEL', stream, entryId)
  return true
end
`,
);
