/**
 * The enqueue and completion scripts exactly as streaq ran them at commit b731477 (the text of
 * `ENQUEUE_SCRIPT` in src/client/enqueue.ts and `COMPLETE_SCRIPT` in src/run/complete.ts, with
 * the `KEY` and `TASK_FIELD` names and the shared Lua of src/client/graph.ts and src/run/fetch.ts
 * interpolated), frozen here so that `declared_keys.ts` measures the same text whatever the
 * scripts in src/ become. Regenerate by printing `ENQUEUE_SCRIPT.lua` and `COMPLETE_SCRIPT.lua`.
 *
 * @module
 */

/** `ENQUEUE_SCRIPT` at b731477: keys of each task built in Lua from the prefix (ARGV[3]). */
export const ENQUEUE_LUA = `
-- Redis's clock, in ms since the epoch.
local function redisTime()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The due time (ms since the epoch) of an argument as dueArg() sends it: '+ms' is that long
-- after now (redisTime()), anything else an instant.
local function dueTime(arg, now)
  if string.sub(arg, 1, 1) == '+' then return now + tonumber(string.sub(arg, 2)) end
  return tonumber(arg)
end

-- Moves a task whose dependencies are settled out of waiting: into the delayed set when it is
-- due later on Redis's clock (and not failing), else into its own priority's stream. Returns
-- the due time when it went to the delayed set.
local function placeReady(P, id, now)
  local key = P .. 'task:' .. id
  redis.call('HDEL', key, 'wait')
  redis.call('DEL', P .. 'deps:' .. id)
  redis.call('SREM', P .. 'waiting', id)
  local f = redis.call('HMGET', key, 'pri', 'due', 'depfail')
  if f[2] and not f[3] and tonumber(f[2]) > redisTime() then
    redis.call('ZADD', P .. 'delayed', f[2], id)
    return tonumber(f[2])
  end
  redis.call('HDEL', key, 'due')
  redis.call('HSET', key, 'et', now)
  redis.call('XADD', P .. 'stream:' .. f[1], '*', 'id', id)
  return nil
end

-- Applies how dependency dep ended ('1', '0' or 'c') to the waiting task id. Returns true when
-- id is ready to be placed.
local function settleEdge(P, id, dep, ended, result)
  local key = P .. 'task:' .. id
  local mode = redis.call('HGET', key, 'mode')
  if ended == 'c' then
    redis.call('HSET', key, 'depfail', 'cancel:' .. dep)
    return true
  end
  if mode == 'else' then
    -- A fallback runs when its task failed; when it succeeded, it passes the result on.
    if ended == '1' then redis.call('HSET', key, 'input', result, 'pass', 1) end
    return true
  end
  if ended ~= '1' then
    redis.call('HSET', key, 'depfail', dep)
    return true
  end
  if mode == 'pipe' and redis.call('HGET', key, 'src') == dep then
    redis.call('HSET', key, 'input', result)
  end
  redis.call('SREM', P .. 'deps:' .. id, dep)
  return redis.call('SCARD', P .. 'deps:' .. id) == 0
end

-- Settles every waiting dependent of dep, which ended with the stored result given. Returns
-- the earliest due time of those that went to the delayed set, or nil.
local function releaseDependents(P, dep, result, now)
  local ended, earliest = string.sub(result, 1, 1), nil
  local dependents = redis.call('SMEMBERS', P .. 'dependents:' .. dep)
  if #dependents == 0 then return nil end
  for _, id in ipairs(dependents) do
    if redis.call('HEXISTS', P .. 'task:' .. id, 'wait') == 1
        and settleEdge(P, id, dep, ended, result) then
      local due = placeReady(P, id, now)
      if due and (earliest == nil or due < earliest) then earliest = due end
    end
  end
  redis.call('DEL', P .. 'dependents:' .. dep)
  return earliest
end

-- Links a new task id to the dependencies listed in after (ids separated by spaces). A
-- dependency already finished is settled at once; an unknown one marks the task failing.
-- Returns true when the task must wait.
local function linkDependencies(P, id, after)
  local key = P .. 'task:' .. id
  for dep in string.gmatch(after, '%S+') do
    if redis.call('EXISTS', P .. 'task:' .. dep) == 1 then
      redis.call('SADD', P .. 'deps:' .. id, dep)
      redis.call('SADD', P .. 'dependents:' .. dep, id)
    else
      local result = redis.call('GET', P .. 'result:' .. dep)
      if result then
        settleEdge(P, id, dep, string.sub(result, 1, 1), result)
      else
        redis.call('HSET', key, 'depfail', 'unknown:' .. dep)
      end
    end
  end
  local settled = redis.call('HEXISTS', key, 'depfail') == 1 or redis.call('HEXISTS', key, 'pass') == 1
  if settled or redis.call('SCARD', P .. 'deps:' .. id) == 0 then
    redis.call('DEL', P .. 'deps:' .. id)
    return false
  end
  redis.call('HSET', key, 'wait', 1)
  redis.call('SADD', P .. 'waiting', id)
  return true
end

local now, P = tonumber(ARGV[1]), ARGV[3]
local stored, earliest = 0, nil
for a = 4, #ARGV, 6 do
  local taskKey, stream, resultKey = P .. 'task:' .. ARGV[a], P .. 'stream:' .. ARGV[a + 3],
    P .. 'result:' .. ARGV[a]
  local id, dueArg = ARGV[a], ARGV[a + 4]
  local crontab, tz, after, mode, source = '', '', '', '', ''
  if ARGV[a + 5] ~= '' then
    local links = cjson.decode(ARGV[a + 5])
    crontab, tz, after, mode, source = links[1], links[2], links[3], links[4], links[5]
  end
  if redis.call('EXISTS', taskKey, resultKey) == 0 then
    if dueArg == '0' and after == '' and crontab == '' then
      -- The common case, a task to run now: one write for its hash, one for its stream.
      redis.call('HSET', taskKey, 'fn', ARGV[a + 1], 'data', ARGV[a + 2], 'pri', ARGV[a + 3],
        'ct', now, 'tries', 0, 'et', now)
      redis.call('XADD', stream, '*', 'id', id)
    else
      redis.call('HSET', taskKey, 'fn', ARGV[a + 1], 'data', ARGV[a + 2], 'pri', ARGV[a + 3],
        'ct', now, 'tries', 0)
      local due, later = 0, false
      if dueArg ~= '0' then
        local present = redisTime()
        due = dueTime(dueArg, present)
        later = due > present
      end
      if crontab ~= '' then
        redis.call('HSET', taskKey, 'cron', crontab, 'tz', tz)
        redis.call('SADD', KEYS[2], id)
      end
      if later then redis.call('HSET', taskKey, 'due', due, 'at', due) end
      local waits, settled = false, false
      if after ~= '' then
        redis.call('HSET', taskKey, 'after', after)
        if mode ~= '' then redis.call('HSET', taskKey, 'mode', mode, 'src', source) end
        waits = linkDependencies(P, id, after)
        -- Linking can settle the task at once: a failed dependency, or a fallback passing on.
        settled = redis.call('HEXISTS', taskKey, 'depfail') == 1
          or redis.call('HEXISTS', taskKey, 'pass') == 1
      end
      if not waits then
        if later and not settled then
          redis.call('ZADD', KEYS[1], due, id)
          if earliest == nil or due < earliest then earliest = due end
        else
          if later then redis.call('HDEL', taskKey, 'due') end
          redis.call('HSET', taskKey, 'et', now)
          redis.call('XADD', stream, '*', 'id', id)
        end
      end
    end
    stored = stored + 1
  end
end
if earliest ~= nil then
  -- Wake sleeping schedulers only when this is now the earliest delayed task.
  local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if tonumber(head[2]) >= earliest then redis.call('PUBLISH', ARGV[2], earliest) end
end
return stored
`;

/** `COMPLETE_SCRIPT` at b731477: keys of each delivery built in Lua from the prefix (ARGV[6]). */
export const COMPLETE_LUA = `#!lua flags=allow-oom

-- Redis's clock, in ms since the epoch.
local function redisTime()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The due time (ms since the epoch) of an argument as dueArg() sends it: '+ms' is that long
-- after now (redisTime()), anything else an instant.
local function dueTime(arg, now)
  if string.sub(arg, 1, 1) == '+' then return now + tonumber(string.sub(arg, 2)) end
  return tonumber(arg)
end

-- Moves a task whose dependencies are settled out of waiting: into the delayed set when it is
-- due later on Redis's clock (and not failing), else into its own priority's stream. Returns
-- the due time when it went to the delayed set.
local function placeReady(P, id, now)
  local key = P .. 'task:' .. id
  redis.call('HDEL', key, 'wait')
  redis.call('DEL', P .. 'deps:' .. id)
  redis.call('SREM', P .. 'waiting', id)
  local f = redis.call('HMGET', key, 'pri', 'due', 'depfail')
  if f[2] and not f[3] and tonumber(f[2]) > redisTime() then
    redis.call('ZADD', P .. 'delayed', f[2], id)
    return tonumber(f[2])
  end
  redis.call('HDEL', key, 'due')
  redis.call('HSET', key, 'et', now)
  redis.call('XADD', P .. 'stream:' .. f[1], '*', 'id', id)
  return nil
end

-- Applies how dependency dep ended ('1', '0' or 'c') to the waiting task id. Returns true when
-- id is ready to be placed.
local function settleEdge(P, id, dep, ended, result)
  local key = P .. 'task:' .. id
  local mode = redis.call('HGET', key, 'mode')
  if ended == 'c' then
    redis.call('HSET', key, 'depfail', 'cancel:' .. dep)
    return true
  end
  if mode == 'else' then
    -- A fallback runs when its task failed; when it succeeded, it passes the result on.
    if ended == '1' then redis.call('HSET', key, 'input', result, 'pass', 1) end
    return true
  end
  if ended ~= '1' then
    redis.call('HSET', key, 'depfail', dep)
    return true
  end
  if mode == 'pipe' and redis.call('HGET', key, 'src') == dep then
    redis.call('HSET', key, 'input', result)
  end
  redis.call('SREM', P .. 'deps:' .. id, dep)
  return redis.call('SCARD', P .. 'deps:' .. id) == 0
end

-- Settles every waiting dependent of dep, which ended with the stored result given. Returns
-- the earliest due time of those that went to the delayed set, or nil.
local function releaseDependents(P, dep, result, now)
  local ended, earliest = string.sub(result, 1, 1), nil
  local dependents = redis.call('SMEMBERS', P .. 'dependents:' .. dep)
  if #dependents == 0 then return nil end
  for _, id in ipairs(dependents) do
    if redis.call('HEXISTS', P .. 'task:' .. id, 'wait') == 1
        and settleEdge(P, id, dep, ended, result) then
      local due = placeReady(P, id, now)
      if due and (earliest == nil or due < earliest) then earliest = due end
    end
  end
  redis.call('DEL', P .. 'dependents:' .. dep)
  return earliest
end

-- Links a new task id to the dependencies listed in after (ids separated by spaces). A
-- dependency already finished is settled at once; an unknown one marks the task failing.
-- Returns true when the task must wait.
local function linkDependencies(P, id, after)
  local key = P .. 'task:' .. id
  for dep in string.gmatch(after, '%S+') do
    if redis.call('EXISTS', P .. 'task:' .. dep) == 1 then
      redis.call('SADD', P .. 'deps:' .. id, dep)
      redis.call('SADD', P .. 'dependents:' .. dep, id)
    else
      local result = redis.call('GET', P .. 'result:' .. dep)
      if result then
        settleEdge(P, id, dep, string.sub(result, 1, 1), result)
      else
        redis.call('HSET', key, 'depfail', 'unknown:' .. dep)
      end
    end
  end
  local settled = redis.call('HEXISTS', key, 'depfail') == 1 or redis.call('HEXISTS', key, 'pass') == 1
  if settled or redis.call('SCARD', P .. 'deps:' .. id) == 0 then
    redis.call('DEL', P .. 'deps:' .. id)
    return false
  end
  redis.call('HSET', key, 'wait', 1)
  redis.call('SADD', P .. 'waiting', id)
  return true
end

-- Redis's clock, in ms since the epoch.
local function redisTime()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The due time (ms since the epoch) of an argument as dueArg() sends it: '+ms' is that long
-- after now (redisTime()), anything else an instant.
local function dueTime(arg, now)
  if string.sub(arg, 1, 1) == '+' then return now + tonumber(string.sub(arg, 2)) end
  return tonumber(arg)
end

-- Whether any abort is pending at all: one SCARD per call spares a SISMEMBER per task.
local anyAborting = false
local function startTask(prefix, abortingKey, me, id, start)
  local key = prefix .. id
  -- pcall, and no HINCRBY: a key of another type, or a try count that is not a number, makes
  -- that task unusable (it is dropped, or counts from 0), not the whole fetch fail again and again.
  local f = redis.pcall('HMGET', key, 'fn', 'data', 'tries', 'ct', 'et', 'run', 'last', 'cron',
    'tz', 'at', 'depfail', 'input', 'pass', 'src')
  if f.err or not f[1] then return {id, 0, false} end
  local tries = math.floor(tonumber(f[3]) or 0) + 1
  if start then redis.call('HSET', key, 'tries', tries, 'run', me) end
  local aborting = anyAborting and redis.call('SISMEMBER', abortingKey, id) or 0
  -- Times as numbers and absent fields as nil (false): the client allocates a buffer for every
  -- string in the reply, and most of these fields are usually empty.
  local created = tonumber(f[4]) or 0
  local scheduled, late = tonumber(f[10]), false
  if scheduled then late = redisTime() - scheduled end
  return {id, start and 1 or 2, f[1], f[2], false, tries, created, tonumber(f[5]) or created,
    f[6] or false, f[7] or false, aborting, f[8] or false, f[9] or false, scheduled or 0,
    f[11] or false, f[12] or false, f[13] and 1 or 0, f[14] or false, late}
end

-- The task id of a stream entry, or nil for an entry without one, which can never run.
local function entryTaskId(entry)
  local fields = entry[2]
  if type(fields) ~= 'table' then return nil end
  for j = 1, #fields, 2 do
    if fields[j] == 'id' and fields[j + 1] ~= '' then return fields[j + 1] end
  end
  return nil
end

-- Writes the start of a prefetched delivery (read by startTask, and maybe running already):
-- counts the try and marks it running if this worker still holds it. Returns {id, 1, aborting},
-- {id, -1} when another worker took it over (or it is finished already), or {id, 0} when its
-- hash is gone. A fresh delivery (fresh: its try count, else '0') was claimed too recently for
-- any worker to have taken it over (see FRESH_CLAIM), and its try count was read with it: its
-- start is one write.
local function startOwned(prefix, abortingKey, group, me, stream, msg, id, fresh)
  local key = prefix .. id
  if fresh ~= '0' then
    redis.call('HSET', key, 'tries', fresh, 'run', me)
    return {id, 1, anyAborting and redis.call('SISMEMBER', abortingKey, id) or 0}
  end
  local pending = redis.call('XPENDING', stream, group, msg, msg, 1)
  if not (pending[1] and pending[1][2] == me) then return {id, -1} end
  local tries = redis.pcall('HGET', key, 'tries')
  if type(tries) ~= 'string' then return {id, 0} end
  redis.call('HSET', key, 'tries', math.floor(tonumber(tries) or 0) + 1, 'run', me)
  return {id, 1, anyAborting and redis.call('SISMEMBER', abortingKey, id) or 0}
end

local group, me, now, donePrefix, P = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6]
local n = tonumber(ARGV[7])
-- The tasks finishing for good in this call, and the keys that name who waits for them.
local channels, dependents = {}, {}
for i = 0, n - 1 do
  local a = 9 + i * 9
  if ARGV[a + 3] == 'final' then
    table.insert(channels, donePrefix .. ARGV[a + 2])
    table.insert(dependents, P .. 'dependents:' .. ARGV[a + 2])
  end
end
-- Who waits for which result: one PUBSUB NUMSUB for the call spares a PUBLISH per task that
-- nobody hears (a waiter subscribes before it reads the result, so one that subscribes after
-- this call finds the result stored). Pattern subscribers are not counted per channel, and a
-- Cluster node counts only its own subscribers: with any pattern subscription on the server, or
-- in a Cluster, every result is published.
local listening = nil
if ARGV[8] == '1' and redis.call('PUBSUB', 'NUMPAT') == 0 then
  listening = {}
  for from = 1, #channels, 1000 do
    local counts = redis.call('PUBSUB', 'NUMSUB',
      unpack(channels, from, math.min(from + 999, #channels)))
    for j = 1, #counts, 2 do
      if counts[j + 1] > 0 then listening[counts[j]] = true end
    end
  end
end
-- Whether any of them has dependents: one EXISTS for the call spares an SMEMBERS per task in
-- the common case of a call without any.
local anyDependents = false
for from = 1, #dependents, 1000 do
  if redis.call('EXISTS', unpack(dependents, from, math.min(from + 999, #dependents))) > 0 then
    anyDependents = true
  end
end
local out, earliest = {}, nil
-- Entries to acknowledge and delete, per stream. One XDEL for all of a call's entries: after
-- deleting a stream's first entry, Redis looks for the next one past every deleted entry left
-- in its node (up to a hundred), once per call rather than once per entry.
local finished = {}
-- The deliveries whose outcome this call wrote, with its kind: a prefetched task can run and
-- finish before the call that writes its start is sent, and then both are in this call, its
-- outcome first. Its start must not write into the hash its outcome just deleted.
local handled = {}
-- One SCARD per call spares an SREM (and a SISMEMBER) per task when no abort is pending.
anyAborting = redis.call('SCARD', KEYS[2]) > 0
local function delay(taskKey, id, due)
  redis.call('ZADD', KEYS[1], due, id)
  if earliest == nil or tonumber(due) < earliest then earliest = tonumber(due) end
end
for i = 0, n - 1 do
  local a = 9 + i * 9
  local stream, msg, id, kind, blob, num = P .. 'stream:' .. ARGV[a], ARGV[a + 1], ARGV[a + 2],
    ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local taskKey, resultKey, lockKey = P .. 'task:' .. id, P .. 'result:' .. id, ARGV[a + 6]
  local owned = ARGV[a + 8] == '1'
  if not owned then
    local pending = redis.call('XPENDING', stream, group, msg, msg, 1)
    owned = pending[1] and pending[1][2] == me
  end
  if owned then
    local ids = finished[stream]
    if not ids then
      ids = {}
      finished[stream] = ids
    end
    table.insert(ids, msg)
    handled[stream .. ' ' .. msg] = kind
    if kind == 'final' then
      if num == '' then
        redis.call('SET', resultKey, blob)
      elseif num ~= '0' then
        redis.call('SET', resultKey, blob, 'PX', num)
      end
      if anyAborting then redis.call('SREM', KEYS[2], id) end
      if listening == nil or listening[donePrefix .. id] then
        redis.call('PUBLISH', donePrefix .. id, blob)
      end
      local released = anyDependents and releaseDependents(P, id, blob, now)
      if released and (earliest == nil or released < earliest) then earliest = released end
      local nextDue = ARGV[a + 7]
      if tonumber(nextDue) and redis.call('HEXISTS', taskKey, 'cron') == 1 then
        redis.call('HDEL', taskKey, 'run', 'et', 'last')
        redis.call('HSET', taskKey, 'tries', 0, 'due', nextDue, 'at', nextDue)
        delay(taskKey, id, nextDue)
      else
        redis.call('DEL', taskKey)
        if nextDue ~= '' then redis.call('SREM', KEYS[3], id) end
      end
    elseif kind == 'retry' then
      local due = dueTime(num, redisTime())
      redis.call('HDEL', taskKey, 'run', 'et')
      redis.call('HSET', taskKey, 'last', blob, 'due', due)
      delay(taskKey, id, due)
    elseif kind == 'back' then
      redis.call('HDEL', taskKey, 'run')
      if blob ~= '' then redis.call('HSET', taskKey, 'last', blob) end
      redis.call('HSET', taskKey, 'et', now)
      redis.call('XADD', stream, '*', 'id', id)
    elseif kind == 'drop' then
      -- What is left under the task's name (a hash without a function, a key of another type)
      -- can never run: it goes with its entry rather than stay forever.
      redis.call('DEL', taskKey)
    end
    if lockKey ~= '' and redis.call('GET', lockKey) == id then redis.call('DEL', lockKey) end
    out[i + 1] = 1
  else
    out[i + 1] = 0
  end
end
for stream, ids in pairs(finished) do
  for from = 1, #ids, 1000 do
    local to = math.min(from + 999, #ids)
    redis.call('XACK', stream, group, unpack(ids, from, to))
    redis.call('XDEL', stream, unpack(ids, from, to))
  end
end
if earliest ~= nil then redis.call('PUBLISH', ARGV[5], earliest) end
local s = 9 + n * 9
local prefix, m = P .. 'task:', tonumber(ARGV[s])
local toStart = tonumber(ARGV[s + 2])
local want = tonumber(ARGV[s + 1]) + toStart
local started, prefetched = {}, {}
for k = 0, m - 1 do
  local b = s + 3 + k * 4
  local stream = P .. 'stream:' .. ARGV[b]
  local outcome = handled[stream .. ' ' .. ARGV[b + 1]]
  if outcome then
    -- A try that ended in a retry or a hand-back still counts: the next one reads the count.
    if outcome == 'retry' or outcome == 'back' then
      redis.call('HINCRBY', prefix .. ARGV[b + 2], 'tries', 1)
    end
    table.insert(started, {ARGV[b + 2], 1, 0})
  else
    table.insert(started, startOwned(prefix, KEYS[2], group, me, stream, ARGV[b + 1],
      ARGV[b + 2], ARGV[b + 3]))
  end
end
-- Claim deliveries for the slots free now and for the prefetch buffer, highest priority first,
-- so that a busy worker needs no separate fetch. pcall: a stream whose consumer group is gone
-- (a restarted Redis) must not stop the completions above; the fetch loop re-creates the group.
local first = 4
for i = first, #KEYS do
  if want <= 0 then break end
  local read = redis.pcall('XREADGROUP', 'GROUP', group, me, 'COUNT', want, 'STREAMS', KEYS[i], '>')
  if type(read) == 'table' and not read.err then
    for _, entry in ipairs(read[1][2]) do
      local id = entryTaskId(entry)
      if id then
        table.insert(prefetched, {i - first + 1, entry[1],
          startTask(prefix, KEYS[2], me, id, toStart > 0)})
        toStart = toStart - 1
      else
        -- Dropped, and returned without a task id so that the worker warns about it.
        redis.call('XACK', KEYS[i], group, entry[1])
        redis.call('XDEL', KEYS[i], entry[1])
        table.insert(prefetched, {i - first + 1, entry[1], {'', 0, false}})
      end
      want = want - 1
    end
  end
end
return {out, started, prefetched}
`;
