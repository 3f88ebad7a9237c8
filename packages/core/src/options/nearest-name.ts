/**
 * The known name a misspelled one most likely meant, or undefined when none is close: the same name in
 * another case (`maxlen` → `maxLen`), one a few edits away (`urll` → `url`, `tsl` → `tls`), or one the
 * misspelling starts with or is the start of (`streamKey` → `stream`, `user` → `username`), one on the same
 * stem (`rotation` → `rotate`), or another client's name for the same option (`ssl` → `tls`).
 */
export function nearestName(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  const sameCase = known.find((candidate) => candidate.toLowerCase() === lower);
  if (sameCase !== undefined) return sameCase;
  const alias = (Object.hasOwn(ALIASES, lower) ? ALIASES[lower] : undefined)?.find((candidate) =>
    known.includes(candidate),
  );
  if (alias !== undefined) return alias;
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase(), bestDistance);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best !== undefined) return best;
  if (lower.length < 3) return undefined;
  const contained = known.find((candidate) => {
    const other = candidate.toLowerCase();
    return other.length >= 3 && (lower.startsWith(other) || other.startsWith(lower));
  });
  if (contained !== undefined) return contained;
  // A different ending on the same stem: `rotation` → `rotate`.
  let longest = Math.max(4, Math.ceil(lower.length / 2)) - 1;
  for (const candidate of known) {
    const prefix = commonPrefixLength(lower, candidate.toLowerCase());
    if (prefix > longest) {
      best = candidate;
      longest = prefix;
    }
  }
  return best;
}

/**
 * Names other clients use for what our options call differently, which spelling distance would get wrong
 * (`host` is one edit from `vhost`, `ssl` from `url`): kafkajs and amqplib say `ssl` and `host`/`hostname`,
 * other readers say `dlq`, and many clients count `retries` where our `retry.maxAttempts` counts attempts. Each maps to the names it may mean, in order; the first one known wins.
 */
const ALIASES: Readonly<Record<string, readonly string[]>> = {
  ssl: ["tls"],
  host: ["host", "hostname"],
  hostname: ["hostname", "host"],
  maxretries: ["maxAttempts", "retry"],
  retries: ["maxAttempts", "retry"],
  dlq: ["deadLetter", "deadLetterTopic", "deadLetterStream", "deadLetterQueue"],
  deadletterqueue: ["deadLetter", "deadLetterTopic", "deadLetterStream", "deadLetterQueue"],
};

function commonPrefixLength(a: string, b: string): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/**
 * Optimal string alignment distance (insertions, deletions, substitutions and swaps of neighbours, so `tsl`
 * is one edit from `tls`). Stops early and returns `limit` once the distance cannot get below it.
 */
export function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let beforePrevious: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, beforePrevious[j - 2]! + 1);
      }
      current.push(value);
      rowMin = Math.min(rowMin, value);
    }
    if (rowMin >= limit) return limit;
    beforePrevious = previous;
    previous = current;
  }
  return Math.min(previous[b.length]!, limit);
}
