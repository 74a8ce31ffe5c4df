import type { Script, ScriptArgument } from '../../infra/redis/kv.ts';
import { type Bucket, decide } from './domain/gcra.ts';

/**
 * GCRA over several buckets in one atomic step (see domain/gcra.ts for the algorithm).
 *
 * KEYS: one per bucket. ARGV: now in ms ('' = the Redis server's clock, which every replica
 * shares), want, minimum, then limit and window (ms) per bucket.
 * Reply: granted, then remaining, reset (ms) and retry-after (ms) per bucket.
 *
 * A stored TAT keeps three decimals, and its key expires when its bucket is full again.
 */
const GCRA_LUA = `
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
end
local want = tonumber(ARGV[2])
local minimum = tonumber(ARGV[3])
local tats, intervals, windows, available = {}, {}, {}, {}
local granted = want
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 + i * 2])
  local window = tonumber(ARGV[3 + i * 2])
  local stored = tonumber(redis.call('GET', KEYS[i]))
  local tat = now
  if stored and stored > now then tat = stored end
  local interval = window / limit
  local units = math.floor((now + window - tat) / interval + 1e-9)
  if units < 0 then units = 0 end
  tats[i] = tat
  intervals[i] = interval
  windows[i] = window
  available[i] = units
  if units < granted then granted = units end
end
if granted < minimum then granted = 0 end
local reply = { granted }
for i = 1, #KEYS do
  if granted == 0 then
    local retry = 0
    if available[i] < minimum then
      retry = math.ceil(tats[i] + minimum * intervals[i] - windows[i] - now)
    end
    reply[#reply + 1] = available[i]
    reply[#reply + 1] = math.ceil(tats[i] - now)
    reply[#reply + 1] = retry
  else
    local nextTat = tonumber(string.format('%.3f', tats[i] + granted * intervals[i]))
    redis.call('SET', KEYS[i], string.format('%.3f', nextTat), 'PX', math.max(1, math.ceil(nextTat - now)))
    reply[#reply + 1] = available[i] - granted
    reply[#reply + 1] = math.ceil(nextTat - now)
    reply[#reply + 1] = 0
  end
end
return reply
`;

export const gcraScript: Script<number[]> = {
  name: 'gcra_v1',
  lua: GCRA_LUA,
  memory: (data, keys, args) => {
    const now = args[0] === '' ? data.nowMs() : Number(args[0]);
    const buckets: Bucket[] = keys.map((_, i) => ({
      limit: Number(args[3 + i * 2]),
      windowMs: Number(args[4 + i * 2]),
    }));
    const stored = keys.map((key) => {
      const value = data.get(key);
      return value === null ? undefined : Number(value);
    });
    const decision = decide(buckets, stored, now, Number(args[1]), Number(args[2]));
    const reply = [decision.granted];
    decision.buckets.forEach((outcome, i) => {
      if (outcome.nextTatMs !== undefined) {
        const nextTat = Number(outcome.nextTatMs.toFixed(3));
        data.set(keys[i]!, nextTat.toFixed(3), Math.max(1, Math.ceil(nextTat - now)));
        reply.push(outcome.remaining, Math.ceil(nextTat - now), 0);
      } else {
        reply.push(outcome.remaining, outcome.resetMs, outcome.retryAfterMs);
      }
    });
    return reply;
  },
};

export function gcraArguments(
  buckets: readonly Bucket[],
  want: number,
  minimum: number,
  nowMs?: number,
): ScriptArgument[] {
  const args: ScriptArgument[] = [nowMs === undefined ? '' : nowMs, want, minimum];
  for (const bucket of buckets) args.push(bucket.limit, bucket.windowMs);
  return args;
}
