/** One retrievable passage of the demo's in-memory knowledge base. */
export interface Passage {
  readonly id: string;
  readonly title: string;
  readonly text: string;
}

/** A tiny fixed corpus about streamll itself, so answers read sensibly without any network or model. */
export const CORPUS: readonly Passage[] = [
  {
    id: "p-events",
    title: "Events",
    text: "Every module call, custom step, streamed token and error becomes a small versioned JSON event.",
  },
  {
    id: "p-pipeline",
    title: "Delivery pipeline",
    text: "Events travel through a bounded queue that batches, retries with backoff and opens a circuit breaker when a sink keeps failing.",
  },
  {
    id: "p-sinks",
    title: "Sinks",
    text: "Sinks deliver batches to the terminal, a JSON Lines file, memory, Redis Streams, RabbitMQ or Kafka.",
  },
  {
    id: "p-tokens",
    title: "Token streaming",
    text: "Streamed output fields produce one token event per chunk so a dashboard can show an answer as it is written.",
  },
  {
    id: "p-safety",
    title: "Host safety",
    text: "Emitting never throws and never blocks; memory stays bounded and every dropped event is counted.",
  },
  {
    id: "p-versions",
    title: "Module versions",
    text: "A hash of the module code tells versions apart so results can be compared across prompt changes.",
  },
];

const STOP_WORDS = new Set([
  "a",
  "an",
  "and",
  "are",
  "as",
  "do",
  "does",
  "how",
  "i",
  "in",
  "is",
  "it",
  "of",
  "or",
  "the",
  "to",
  "what",
  "when",
  "which",
  "why",
  "with",
]);

/** Lower-cased content words of `text`. */
export function terms(text: string): string[] {
  return (text.toLowerCase().match(/[a-z0-9]+/g) ?? []).filter((t) => !STOP_WORDS.has(t));
}

/**
 * Ranks passages by how many query terms they share (prefix matches count, so "stream" finds "streamed"),
 * highest first; ties keep corpus order so results are deterministic.
 */
export function search(corpus: readonly Passage[], query: string, k: number): Passage[] {
  const queryTerms = terms(query);
  const scored = corpus.map((passage, index) => {
    const passageTerms = terms(`${passage.title} ${passage.text}`);
    let score = 0;
    for (const q of queryTerms) {
      if (passageTerms.some((p) => p.startsWith(q) || q.startsWith(p))) score += 1;
    }
    return { passage, index, score };
  });
  return scored
    .filter((s) => s.score > 0)
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, k)
    .map((s) => s.passage);
}
