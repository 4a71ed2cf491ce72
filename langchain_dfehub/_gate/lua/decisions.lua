-- The gate's decisions, as `_decisions.py` makes them, for Redis.
--
-- A line-for-line port: the same records (one JSON object per lane, one for
-- the counts), the same functions, the same notes. The scenario suite runs
-- against both, so they cannot drift apart. Loaded before `gate.lua`, which
-- reads the keys, runs one decision and writes the records back.

local SAFETY = 0.9
local DECREASE = 0.8
local RELAX_EVERY = 30.0
local RELAX_WAITS = 30.0
local INCREASE = 1.25
local RELAXED_AFTER = 12
local BACKOFF_FIRST = 0.25
local BACKOFF_MAX = 8.0
local PROBE_LEASE = 180.0
local PROBE_POLL = 0.1
local WINDOW_SLACK = 0.05
local WINDOW_MAX = 256
local NEVER = -1e18
local SAME_MOMENT = 1e-6
local ABSURD_WAIT = 86400.0 * 1.5
local DRF_PERIODS = {1.0, 60.0, 3600.0, 86400.0}
local ROUNDING_SLACK = 1.5
local INFO = 20
local WARNING = 30

-- JSON with every float's 17 digits: cjson keeps 14, and a time rounded on
-- the way back and forth would never equal itself (a gate that opens "now"
-- but not yet).
local function encode(value)
  local kind = type(value)
  if value == nil or value == cjson.null then
    return 'null'
  elseif kind == 'number' then
    if value == math.floor(value) and math.abs(value) < 1e15 then
      return string.format('%d', value)
    end
    return string.format('%.17g', value)
  elseif kind == 'boolean' then
    return tostring(value)
  elseif kind == 'string' then
    return cjson.encode(value)
  end
  local size, keys = #value, 0
  for _ in pairs(value) do keys = keys + 1 end
  local parts = {}
  if keys == size then
    for position = 1, size do parts[position] = encode(value[position]) end
    return '[' .. table.concat(parts, ',') .. ']'
  end
  for name, item in pairs(value) do
    table.insert(parts, cjson.encode(tostring(name)) .. ':' .. encode(item))
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

local function is_number(value)
  return type(value) == 'number' and value == value and value ~= math.huge
    and value ~= -math.huge
end

-- Field: its default, and its kind: 'n' number, 'i' integer, 'b' boolean,
-- 'p' positive number or none.
local LANE_FIELDS = {
  closed_until = {0.0, 'n'}, closed_at = {NEVER, 'n'}, epoch = {0, 'i'},
  interval = {nil, 'p'}, last_sent = {NEVER, 'n'}, last_event = {0.0, 'n'},
  relaxations = {0, 'i'}, relax_every = {RELAX_EVERY, 'n'},
  held_pace = {nil, 'p'}, in_row = {0, 'i'}, episode_start = {-1.0, 'n'},
  learning = {false, 'b'}, pace_before = {nil, 'p'},
  relaxed_too_far = {false, 'b'}, probing = {false, 'b'}, probe_id = {0, 'i'},
  probe_since = {NEVER, 'n'}, last_long_probe = {NEVER, 'n'},
  window = {0, 'i'}, period = {0.0, 'n'}, decrease = {DECREASE, 'p'},
}

local function fresh_lane()
  local lane = {held = {}, entered = {}, history = {}}
  for name, spec in pairs(LANE_FIELDS) do lane[name] = spec[1] end
  return lane
end

-- A lane from its stored JSON; anything malformed makes a fresh lane.
local function lane_from(text)
  if not text then return fresh_lane() end
  local ok, record = pcall(cjson.decode, text)
  if not ok or type(record) ~= 'table' then return fresh_lane() end
  local lane = fresh_lane()
  for name, spec in pairs(LANE_FIELDS) do
    local value = record[name]
    if value == cjson.null then value = nil end
    if value ~= nil then
      local kind = spec[2]
      if kind == 'b' then
        if type(value) ~= 'boolean' then return fresh_lane() end
      elseif kind == 'p' then
        if not (is_number(value) and value > 0) then return fresh_lane() end
      elseif kind == 'i' then
        if not (is_number(value) and value == math.floor(value)) then
          return fresh_lane()
        end
      elseif not is_number(value) then
        return fresh_lane()
      end
      lane[name] = value
    elseif spec[2] ~= 'p' and record[name] == cjson.null then
      return fresh_lane()
    end
  end
  for _, name in ipairs({'held', 'entered'}) do
    local values = record[name]
    if values ~= nil then
      if type(values) ~= 'table' then return fresh_lane() end
      for _, value in ipairs(values) do
        if not is_number(value) then return fresh_lane() end
        table.insert(lane[name], value)
      end
      table.sort(lane[name])
    end
  end
  return lane
end

local function lane_record(lane)
  local record = {}
  for name, _ in pairs(LANE_FIELDS) do
    local value = lane[name]
    if value == nil then value = cjson.null end
    record[name] = value
  end
  record.held = lane.held
  record.entered = lane.entered
  return record
end

local function counts_from(text)
  local counts = {sent = 0, admitted = 0, throttled = 0, events = 0, ids = 0}
  if not text then return counts end
  local ok, record = pcall(cjson.decode, text)
  if not ok or type(record) ~= 'table' then return counts end
  for name, _ in pairs(counts) do
    local value = record[name]
    if is_number(value) and value >= 0 and value == math.floor(value) then
      counts[name] = value
    end
  end
  return counts
end

local function pace_of(lane)
  if lane.interval == nil then return nil end
  return 1.0 / lane.interval
end

local function usable_wait(wait)
  if wait == nil or not is_number(wait) or wait < 0 or wait > ABSURD_WAIT then
    return nil
  end
  return wait
end

-- --- one lane -------------------------------------------------------------------

local function probe_free(lane, now)
  return lane.probe_id == 0 or now - lane.probe_since > PROBE_LEASE
end

local function window_opens(lane)
  if lane.window <= 0 or #lane.entered < lane.window then return NEVER end
  return lane.entered[#lane.entered - lane.window + 1]
    + lane.period * (1.0 + WINDOW_SLACK)
end

local function next_slot(lane, now)
  local interval = lane.interval
  local slot = math.max(now, lane.last_sent + interval, window_opens(lane))
  for _, held in ipairs(lane.held) do
    if slot + interval <= held then break end
    slot = math.max(slot, held + interval)
  end
  return slot
end

local function take_slot(lane, slot)
  local position = 1
  while position <= #lane.held and lane.held[position] <= slot do
    position = position + 1
  end
  table.insert(lane.held, position, slot)
end

local function give_back(lane, hold)
  local epoch, slot = hold[1], hold[2]
  if slot == cjson.null then slot = nil end
  if epoch ~= lane.epoch or slot == nil then return end
  for position, held in ipairs(lane.held) do
    if math.abs(held - slot) <= SAME_MOMENT then
      table.remove(lane.held, position)
      return
    end
  end
end

local function settle(lane, rid)
  if lane.probe_id == rid then lane.probe_id = 0 end
end

local function drf_period(span)
  for _, period in ipairs(DRF_PERIODS) do
    if period <= span and span <= period + math.max(ROUNDING_SLACK, period / 2) then
      return period
    end
  end
  return span
end

local function backoff(in_row, jitter)
  local base = math.min(
    BACKOFF_FIRST * 2.0 ^ math.min(math.max(in_row, 1) - 1, 32), BACKOFF_MAX)
  return base + jitter * BACKOFF_FIRST
end

local function floor_of(in_row)
  if in_row <= 1 then return 0.0 end
  return math.min(BACKOFF_FIRST * 2.0 ^ math.min(in_row - 2, 32), BACKOFF_MAX)
end

local function estimate_rate(lane, reopens_at)
  local best, count, best_count, best_span = nil, 0, 0, 0.0
  for position = #lane.history, 1, -1 do
    local sent_at = lane.history[position]
    if sent_at < lane.episode_start then break end
    count = count + 1
    local span = drf_period(reopens_at - sent_at)
    if span > 0 and (best == nil or count / span > best) then
      best, best_count, best_span = count / span, count, span
    end
  end
  return best, count, best_count, best_span
end

local function learn(lane, index, reopens_at, notes)
  lane.learning = false
  local rate, count, window, period = estimate_rate(lane, reopens_at)
  local old_pace = lane.pace_before
  local pace
  if rate == nil then
    if old_pace ~= nil then pace = old_pace * lane.decrease end
  elseif lane.relaxed_too_far and old_pace ~= nil then
    pace = old_pace
  else
    pace = rate * SAFETY
    if old_pace ~= nil then pace = math.min(pace, old_pace * lane.decrease) end
  end
  lane.relaxed_too_far = false
  if pace == nil then lane.interval = nil else lane.interval = 1.0 / pace end
  lane.episode_start = reopens_at
  lane.entered = {}
  if rate ~= nil and pace ~= nil and window <= WINDOW_MAX then
    lane.window, lane.period = window, period
  elseif pace == nil then
    lane.window, lane.period = 0, 0.0
  end
  if pace ~= nil and pace ~= old_pace then
    table.insert(notes, {INFO, index,
      '%s reopened; pacing requests at %.3g/s (learned from %d admitted'
      .. ' before the throttle).', {pace, count}})
  end
end

local function ready(lane, index, notes)
  if lane.learning and not lane.probing then
    learn(lane, index, lane.closed_until, notes)
  end
end

local function relax(lane, index, now, notes)
  if lane.interval == nil then return end
  local steps = math.floor((now - lane.last_event) / lane.relax_every)
    - lane.relaxations
  if steps <= 0 then return end
  lane.relaxations = lane.relaxations + steps
  lane.held_pace = INCREASE ^ (steps - 1) / lane.interval
  if lane.relaxations >= RELAXED_AFTER then
    lane.interval = nil
    lane.held = {}
    lane.window, lane.period = 0, 0.0
    lane.entered = {}
    table.insert(notes, {INFO, index,
      '%s has not throttled for %g s; no longer pacing requests.',
      {lane.relaxations * lane.relax_every}})
    return
  end
  lane.interval = lane.interval / INCREASE ^ steps
  table.insert(notes, {INFO, index,
    '%s has not throttled for %g s; pacing relaxed to %.3g requests/s.',
    {lane.relaxations * lane.relax_every, 1.0 / lane.interval}})
end

local function close(lane, index, sent_at, wait, now, jitter, notes)
  local new_event = sent_at > lane.closed_at
  wait = usable_wait(wait)
  if new_event then lane.in_row = lane.in_row + 1 end
  local least = floor_of(lane.in_row)
  if wait == nil and new_event then lane.probing = true end
  if wait == nil or wait <= 0 then wait = backoff(lane.in_row, jitter) end
  wait = math.max(wait, least)
  if not new_event then
    lane.closed_until = math.min(lane.closed_until, now + wait)
    return false
  end
  lane.epoch = lane.epoch + 1
  lane.held = {}
  lane.closed_at = now
  lane.last_event = now
  lane.closed_until = now + wait
  if not lane.learning then
    lane.learning = true
    lane.pace_before = pace_of(lane)
    if lane.relaxations > 0 then
      lane.pace_before = lane.held_pace
      lane.relaxed_too_far = true
    end
  end
  lane.relaxations = 0
  lane.relax_every = math.max(RELAX_EVERY, RELAX_WAITS * wait)
  local probe_words = ''
  if lane.probing then probe_words = ', then one probe' end
  table.insert(notes, {WARNING, index,
    '%s throttled a request; holding every call to it for %.3g s%s.',
    {wait, probe_words}})
  return true
end

-- --- the gate's decisions (lane 1 is the service's, lane 2 the model's) --------
-- Lane indexes in notes count from 0, as Python's do.

local function reservation(rid, at, holds_slot, refused)
  return {id = rid, at = at, holds_slot = holds_slot, refused = refused, holds = {}}
end

local function reserve(lanes, counts, now, limit, probe_every, notes)
  counts.ids = counts.ids + 1
  local rid = counts.ids
  local closed_at = now
  local probes = {}
  for index, lane in ipairs(lanes) do
    if now < lane.closed_until then
      local wait = lane.closed_until - now
      if wait > limit and probe_free(lane, now)
        and now - math.max(lane.last_long_probe, lane.closed_at) >= probe_every then
        probes[index] = true
      else
        closed_at = math.max(closed_at, lane.closed_until)
      end
    elseif lane.probing then
      if probe_free(lane, now) then
        probes[index] = true
      else
        closed_at = math.max(closed_at, now + PROBE_POLL)
      end
    end
  end
  if closed_at > now then
    return reservation(rid, closed_at, false, closed_at - now > limit)
  end
  local at = now
  for index, lane in ipairs(lanes) do
    if not probes[index] then
      ready(lane, index - 1, notes)
      relax(lane, index - 1, now, notes)
      if lane.interval ~= nil then at = math.max(at, next_slot(lane, at)) end
    end
  end
  if at - now > limit then return reservation(rid, at, false, true) end
  local holds = {}
  for index, lane in ipairs(lanes) do
    local probe = probes[index] == true
    local slot = cjson.null
    if probe then
      lane.probe_id = rid
      lane.probe_since = now
      if now < lane.closed_until then lane.last_long_probe = now end
    elseif lane.interval ~= nil then
      slot = next_slot(lane, at)
      take_slot(lane, slot)
    end
    table.insert(holds, {lane.epoch, slot, probe})
  end
  local result = reservation(rid, at, true, false)
  result.holds = holds
  return result
end

local function release(lanes, rid, holds)
  for index, lane in ipairs(lanes) do
    local hold = holds[index]
    if hold == nil then break end
    give_back(lane, hold)
    if hold[3] then settle(lane, rid) end
  end
end

local function enter(lanes, counts, rid, holds, now)
  local valid = true
  for index, lane in ipairs(lanes) do
    local hold = holds[index]
    if hold == nil then break end
    local ok
    if hold[3] then
      ok = lane.probe_id == rid
    else
      ok = now >= lane.closed_until and not lane.probing
        and now >= window_opens(lane)
    end
    if hold[1] ~= lane.epoch or not ok then valid = false end
  end
  if not valid then
    release(lanes, rid, holds)
    return false
  end
  for index, lane in ipairs(lanes) do
    local hold = holds[index]
    if hold == nil then break end
    give_back(lane, hold)
    lane.last_sent = math.max(lane.last_sent, now)
    if lane.episode_start < 0 then lane.episode_start = now end
    if lane.window > 0 then
      table.insert(lane.entered, now)
      while #lane.entered > lane.window do table.remove(lane.entered, 1) end
    end
  end
  counts.sent = counts.sent + 1
  return true
end

local function admitted(lanes, counts, rid, sent_at, notes)
  counts.admitted = counts.admitted + 1
  for index, lane in ipairs(lanes) do
    lane.in_row = 0
    if lane.probe_id == rid then
      lane.probe_id = 0
      if lane.probing then
        lane.probing = false
        if lane.learning then learn(lane, index - 1, sent_at, notes) end
      end
      if lane.closed_until > sent_at then
        lane.closed_until = sent_at
        lane.epoch = lane.epoch + 1
        lane.held = {}
        table.insert(notes, {INFO, index - 1, '%s admitted a probe; reopening.', {}})
      end
    end
    table.insert(lane.history, sent_at)
  end
end

local function throttled(lanes, counts, rid, sent_at, wait, now, per_model, jitter,
    notes, decrease)
  counts.throttled = counts.throttled + 1
  local target = 1
  if per_model then target = #lanes end
  for index, other in ipairs(lanes) do
    if index ~= target then settle(other, rid) end
  end
  local lane = lanes[target]
  if lane.probe_id == rid then lane.probe_id = 0 end
  if close(lane, target - 1, sent_at, wait, now, jitter, notes) then
    counts.events = counts.events + 1
    lane.decrease = decrease or DECREASE
  end
  return lane.closed_until
end

local function apply(op, lanes, counts, now, args)
  local notes = {}
  local result
  local function arg(name)
    local value = args[name]
    if value == cjson.null then return nil end
    return value
  end
  if op == 'reserve' then
    result = reserve(lanes, counts, now, arg('limit'), arg('probe_every'), notes)
    result.entered = false
    if arg('enter') and result.holds_slot and result.at <= now then
      result.entered = enter(lanes, counts, result.id, result.holds, now)
    end
  elseif op == 'enter' then
    result = {entered = enter(lanes, counts, arg('id'), arg('holds'), now)}
  elseif op == 'release' then
    release(lanes, arg('id'), arg('holds'))
    result = {}
  elseif op == 'admitted' then
    admitted(lanes, counts, arg('id'), arg('sent_at'), notes)
    result = {}
  elseif op == 'throttled' then
    result = {closed_until = throttled(lanes, counts, arg('id'), arg('sent_at'),
      arg('wait'), now, arg('per_model'), arg('jitter'), notes, arg('decrease'))}
  elseif op == 'settled' then
    local unsent_at = arg('unsent_at')
    for _, lane in ipairs(lanes) do
      settle(lane, arg('id'))
      if unsent_at ~= nil then
        for position, entered in ipairs(lane.entered) do
          if math.abs(entered - unsent_at) <= SAME_MOMENT then
            table.remove(lane.entered, position)
            break
          end
        end
      end
    end
    result = {}
  elseif op == 'state' then
    local closed_for, pace, probing = 0.0, nil, false
    for _, lane in ipairs(lanes) do
      closed_for = math.max(closed_for, lane.closed_until - now)
      local lane_pace = pace_of(lane)
      if lane_pace ~= nil and (pace == nil or lane_pace < pace) then pace = lane_pace end
      probing = probing or lane.probing
    end
    if pace == nil then pace = cjson.null end
    result = {closed_for = closed_for, pace = pace, probing = probing,
      sent = counts.sent, admitted = counts.admitted, throttled = counts.throttled,
      events = counts.events}
  else
    return redis.error_reply('no gate decision named ' .. tostring(op))
  end
  result.now = now
  result.notes = notes
  return result
end
