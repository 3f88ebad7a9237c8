import { setTimeout as sleep } from "node:timers/promises";
import type { Passage } from "./corpus";

/** Options for {@link FakeLanguageModel}. */
export interface FakeLanguageModelOptions {
  /** Milliseconds between tokens; each token waits `tokenDelayMs` plus a deterministic 0–50 % extra. Default 20. */
  tokenDelayMs?: number;
}

/**
 * A deterministic stand-in for a streaming LLM: it "writes" an answer from the retrieved passages, word by
 * word, with small delays so the live view looks like a real stream. Same input, same tokens, every time.
 */
export class FakeLanguageModel {
  private readonly tokenDelayMs: number;

  constructor(options: FakeLanguageModelOptions = {}) {
    this.tokenDelayMs = options.tokenDelayMs ?? 20;
  }

  /** Streams the answer to `question` grounded in `passages`, one word (with its trailing space) per chunk. */
  async *generate(question: string, passages: readonly Passage[]): AsyncGenerator<string, void, undefined> {
    const words = this.answerFor(question, passages).split(" ");
    for (let i = 0; i < words.length; i++) {
      if (this.tokenDelayMs > 0) {
        const jitter = (hash(`${question}#${i}`) % 50) / 100;
        await sleep(Math.round(this.tokenDelayMs * (1 + jitter)));
      }
      yield i < words.length - 1 ? `${words[i]} ` : (words[i] ?? "");
    }
  }

  /** The full answer text `generate` streams. */
  answerFor(question: string, passages: readonly Passage[]): string {
    if (passages.length === 0) {
      return `I found nothing in the knowledge base about "${question.trim()}".`;
    }
    const [best, ...rest] = passages;
    const sources = passages.map((p) => `[${p.id}]`).join(" ");
    const support = rest.length > 0 ? ` Related: ${rest.map((p) => p.title.toLowerCase()).join(", ")}.` : "";
    return `${best?.text ?? ""}${support} Sources: ${sources}`;
  }
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}
