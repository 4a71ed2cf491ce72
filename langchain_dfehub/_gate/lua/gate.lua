-- One gate decision, atomically, in one round trip (after `decisions.lua`).
--
-- KEYS: the counts, then per lane (the service's, and the model's if any)
-- its record and its list of admitted sends (newest first).
-- ARGV: the decision, its arguments as JSON, the caller's `now` (empty: the
-- server's TIME, so no host's clock is ever compared with another's), the
-- seconds an idle gate's keys live, and how many admitted sends to keep.
-- Returns the result as JSON: times in it are the server's.

local op, args_text, now_text = ARGV[1], ARGV[2], ARGV[3]
local expiry, history_kept = tonumber(ARGV[4]), tonumber(ARGV[5])
-- Server time counts from here, so that its floats keep microseconds.
local ORIGIN = 1700000000

local now
if now_text ~= '' then
  now = tonumber(now_text)
else
  local time = redis.call('TIME')
  now = (tonumber(time[1]) - ORIGIN) + tonumber(time[2]) / 1e6
end
local ok, args = pcall(cjson.decode, args_text)
if not ok or type(args) ~= 'table' then
  return redis.error_reply('malformed gate arguments')
end

local lane_keys = {}
for index = 2, #KEYS, 2 do table.insert(lane_keys, {KEYS[index], KEYS[index + 1]}) end
if op == 'state' and #lane_keys > 1 and redis.call('EXISTS', lane_keys[2][1]) == 0 then
  lane_keys = {lane_keys[1]}  -- a model never seen: the service lane alone
end

-- A value under our key that is not a string (another program's) is reset.
local function text_at(key)
  local ok, value = pcall(redis.call, 'GET', key)
  if not ok then
    redis.call('DEL', key)
    return nil
  end
  if value == false then return nil end
  return value
end

local lanes, before = {}, {}
for index, keys in ipairs(lane_keys) do
  local lane = lane_from(text_at(keys[1]))
  if lane.learning then
    -- The admitted sends are read only when a pace is to be learned.
    local ok, stored = pcall(redis.call, 'LRANGE', keys[2], 0, history_kept - 1)
    if ok then
      for position = #stored, 1, -1 do
        local value = tonumber(stored[position])
        if value ~= nil then table.insert(lane.history, value) end
      end
    end
  end
  lanes[index] = lane
  before[index] = #lane.history
end
local counts = counts_from(text_at(KEYS[1]))

local result = apply(op, lanes, counts, now, args)
if result.err then return result end

if op ~= 'state' then
  for index, keys in ipairs(lane_keys) do
    local lane = lanes[index]
    redis.call('SET', keys[1], encode(lane_record(lane)), 'EX', expiry)
    if #lane.history > before[index] then
      for position = before[index] + 1, #lane.history do
        local text = string.format('%.17g', lane.history[position])
        if not pcall(redis.call, 'LPUSH', keys[2], text) then
          redis.call('DEL', keys[2])  -- not a list of ours: reset
          redis.call('LPUSH', keys[2], text)
        end
      end
      redis.call('LTRIM', keys[2], 0, history_kept - 1)
      redis.call('EXPIRE', keys[2], expiry)
    end
  end
  redis.call('SET', KEYS[1], encode(counts), 'EX', expiry)
end
return encode(result)
