import { emit, instrument, trace } from "@streamll/core";
import { CORPUS, type Passage, search } from "./corpus";
import { FakeLanguageModel } from "./fake-model";

/** What {@link RAGPipeline.forward} takes. */
export interface RAGInput {
  readonly question: string;
}

/** What {@link RAGPipeline.forward} returns. */
export interface RAGResult {
  readonly answer: string;
  /** Ids of the passages the answer is grounded in. */
  readonly sources: readonly string[];
}

/** Options for {@link RAGPipeline}. */
export interface RAGPipelineOptions {
  /** Passages to retrieve from. Default: the built-in {@link CORPUS}. */
  readonly corpus?: readonly Passage[];
  /** Passages retrieved per question. Default 3. */
  readonly k?: number;
  /** The language model. Default: a {@link FakeLanguageModel} with its default token delay. */
  readonly model?: FakeLanguageModel;
}

/** Thrown by {@link RAGPipeline.forward} for a blank question. */
export class EmptyQuestionError extends Error {
  readonly code = "EMPTY_QUESTION";

  constructor() {
    super("question must not be empty");
    this.name = "EmptyQuestionError";
  }
}

/**
 * A DSPy-style retrieve-then-generate module: `forward()` retrieves passages in a traced `retrieval` step
 * and streams an answer from the language model. Both classes are instrumented below, so every call emits
 * start/end (or error) events and the model's stream emits one token event per chunk.
 */
export class RAGPipeline {
  private readonly corpus: readonly Passage[];
  private readonly k: number;
  private readonly model: FakeLanguageModel;

  constructor(options: RAGPipelineOptions = {}) {
    this.corpus = options.corpus ?? CORPUS;
    this.k = options.k ?? 3;
    this.model = options.model ?? new FakeLanguageModel();
  }

  async forward({ question }: RAGInput): Promise<RAGResult> {
    if (typeof question !== "string" || question.trim() === "") throw new EmptyQuestionError();

    const passages = await trace(
      "retrieval",
      async () => {
        const found = search(this.corpus, question, this.k);
        emit("retrieved", { count: found.length, ids: found.map((p) => p.id) });
        return found;
      },
      { data: { k: this.k } },
    );

    let answer = "";
    for await (const token of this.model.generate(question, passages)) answer += token;
    return { answer, sources: passages.map((p) => p.id) };
  }
}

// Instrumenting the classes patches their prototypes once; every instance is then observed.
instrument(RAGPipeline);
instrument(FakeLanguageModel, { methods: ["generate"], streamField: "answer" });
