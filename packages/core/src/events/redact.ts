import type { JsonObject, JsonValue, StreamllEvent } from "./event-schema";

/** What replaces the value of a redacted key. */
export const REDACTED = "[REDACTED]";

/**
 * A function that sees every event before it is encoded and returns it (changed or not), or `null` to drop it.
 * It runs on the caller's thread for every event, so keep it cheap. Mutating the event it receives is allowed.
 */
export type RedactFunction = (event: StreamllEvent) => StreamllEvent | null;

/**
 * How events are redacted before they leave the process:
 * - a list of names: every property of `data` (at any depth, inside arrays too) whose name contains one of the
 *   names (case-insensitively, ignoring `_`, `-`, `.` and spaces; `token` as a word, see
 *   {@link createKeyRedactor}) has its value replaced with `"[REDACTED]"`, and credential-shaped text in any
 *   string value or object key (URL passwords, `Bearer` values, JWTs, `sk-…` keys …) has its secret part
 *   replaced (see {@link scrubKeyNames} for keys that then clash);
 * - a {@link RedactFunction}, which then decides alone (neither of the above is applied).
 */
export type Redactor = readonly string[] | RedactFunction;

/**
 * Words after `token` that make a name a count or position of language-model tokens (`token_count`,
 * `tokenIndex`, `token_ids`), not a credential.
 */
const TOKEN_COUNT_AFTER: ReadonlySet<string> = new Set([
  "count",
  "counts",
  "index",
  "idx",
  "ids",
  "id",
  "num",
  "number",
  "total",
  "limit",
  "limits",
  "usage",
  "length",
  "len",
  "budget",
  "type",
  "types",
  "position",
  "pos",
  "offset",
  "logprob",
  "logprobs",
  "str",
  "text",
]);

/** Words before `token` that name a count or a special vocabulary token (`max_token`, `eos_token`), not a credential. */
const TOKEN_COUNT_BEFORE: ReadonlySet<string> = new Set([
  "max",
  "min",
  "num",
  "total",
  "prompt",
  "completion",
  "input",
  "output",
  "reasoning",
  "cached",
  "eos",
  "bos",
  "pad",
  "unk",
  "sep",
  "cls",
  "mask",
  "special",
  "stop",
  "start",
  "end",
  "first",
  "last",
]);

/**
 * Separators ignored when matching names: `api_key`, `api-key`, `apiKey` and `API.KEY` are one name; so are
 * invisible format characters (a zero-width space inside `api\u200b_key`).
 */
const SEPARATORS = /[\s_.\-\p{Cf}]+/gu;
/** Word boundaries of a name: separators and lower-to-upper case changes (`accessToken` is access + token). */
const WORD_BOUNDARY = /[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])/;
/** An upper-case environment variable name ending in `_KEY`. */
const ENV_KEY_NAME = /^[A-Z][A-Z0-9_]*_KEY$/;
/** Names seen per matcher before its cache is cleared: keys repeat, but data may mint them without end. */
const KEY_CACHE_SIZE = 4096;
/** Longer keys are matched every time rather than cached. */
const KEY_CACHE_MAX_LENGTH = 512;

/** Names exactly this (after normalising) are redacted: as substrings they would match `author`, `passage`. */
const EXACT_NAMES: ReadonlySet<string> = new Set(["auth", "pass"]);

/** `name` as matched: compatibility forms folded (full-width `ａｐｉ_ｋｅｙ` is `api_key`), lower case, no separators. */
function normalizeName(name: string): string {
  return name.normalize("NFKC").toLowerCase().replace(SEPARATORS, "");
}

/**
 * True when `token` is a word of `key` that names a credential (`accessToken`, `x-auth-token`, `id_token`),
 * not language-model tokens (`max_tokens`, `prompt_tokens`, `token_index`, `tokenizer`) and not the bare
 * `token` field of token events, which carries streamed text.
 */
function isCredentialTokenName(key: string): boolean {
  const words = key.split(WORD_BOUNDARY);
  if (words.length < 2) return false;
  for (let i = 0; i < words.length; i++) {
    if ((words[i] as string).toLowerCase() !== "token") continue;
    const before = i > 0 ? (words[i - 1] as string).toLowerCase() : undefined;
    const after = i + 1 < words.length ? (words[i + 1] as string).toLowerCase() : undefined;
    if (before === undefined && after === undefined) continue;
    if (after !== undefined && TOKEN_COUNT_AFTER.has(after)) continue;
    if (before !== undefined && TOKEN_COUNT_BEFORE.has(before)) continue;
    return true;
  }
  return false;
}

/** @internal A bit of {@link KeyRedaction.actionsOf}: the property's value becomes `[REDACTED]`. */
export const REDACT_VALUE = 1;
/** @internal A bit of {@link KeyRedaction.actionsOf}: the key itself holds credential-shaped text to scrub. */
export const SCRUB_KEY = 2;
/** @internal A bit of {@link KeyRedaction.actionsOf}: the key is `$bytes`, whose value is base64 to look into. */
export const BINARY_VALUE = 4;
/** The key binary data is written under (`{"$bytes": "<base64>", "length": n}`). */
const BYTES_KEY = "$bytes";

/**
 * @internal What a key-list redactor matches: key names by substring and credential-shaped text in string
 * values and in keys. Made once per `configure()`; {@link actionsOf} is called for every key of every event,
 * so its answers are cached per name.
 */
export class KeyRedaction {
  /** The names as given, for messages and tests. */
  readonly names: readonly string[];
  /** Number of names; 0 turns key matching and value scanning off. */
  readonly size: number;
  readonly #substrings: readonly string[];
  readonly #tokenWord: boolean;
  #cache = new Map<string, number>();

  constructor(names: readonly string[]) {
    this.names = Object.freeze([...names]);
    this.size = names.length;
    const substrings = new Set<string>();
    let tokenWord = false;
    for (const name of names) {
      const normalized = normalizeName(name);
      if (normalized === "token") tokenWord = true;
      else if (normalized !== "") substrings.add(normalized);
    }
    this.#substrings = [...substrings];
    this.#tokenWord = tokenWord;
  }

  /**
   * What property `key` needs, as bits: {@link REDACT_VALUE} when its name matches one of the names,
   * {@link SCRUB_KEY} when the key itself holds credential-shaped text. 0 for almost every key, from the cache
   * after the first time, so the key scan costs the emit path nothing for names it has seen.
   */
  actionsOf(key: string): number {
    // A cache hit is the common case; matching a name not seen yet stays out of this small method.
    const cached = this.#cache.get(key);
    return cached !== undefined ? cached : this.#match(key);
  }

  #match(key: string): number {
    const normalized = normalizeName(key);
    let match = false;
    for (const substring of this.#substrings) {
      if (normalized.includes(substring)) {
        match = true;
        break;
      }
    }
    if (!match && this.#tokenWord) match = isCredentialTokenName(key);
    // An environment variable named `…_KEY` (`AZURE_OPENAI_KEY`, `APP_KEY`), as the text scan treats `…_KEY=`,
    // and a property named exactly `auth` (Node's `auth: "user:password"`, nodemailer's `auth: { user, pass }`,
    // Docker's config) or `pass` (an SMTP or FTP login's `{ user, pass }`).
    if (!match && this.size > 0 && (ENV_KEY_NAME.test(key) || EXACT_NAMES.has(normalized))) match = true;
    const actions =
      (match ? REDACT_VALUE : 0) |
      (this.size > 0 && redactCredentialText(key) !== key ? SCRUB_KEY : 0) |
      (this.size > 0 && key === BYTES_KEY ? BINARY_VALUE : 0);
    // A long key (data used as a key) would only pin its text in memory: names that repeat are short.
    if (key.length > KEY_CACHE_MAX_LENGTH) return actions;
    if (this.#cache.size >= KEY_CACHE_SIZE) this.#cache = new Map();
    this.#cache.set(key, actions);
    return actions;
  }

  /** True when the value of property `key` is to be replaced by `[REDACTED]`. */
  has(key: string): boolean {
    return (this.actionsOf(key) & REDACT_VALUE) !== 0;
  }

  /** `text` with the secret part of every credential-shaped substring replaced (see {@link redactCredentialText}). */
  scrub(text: string): string {
    return this.size === 0 ? text : redactCredentialText(text);
  }
}

/** Names of credentials as JSON members (`"apiKey"`), as a pattern source: a regular expression group. */
const MEMBER_NAMES =
  "(?:[A-Za-z0-9_-]*(?:password|passwd|pwd|passphrase|secret|api[_-]?key|access[_-]?key|account[_-]?key|subscription[_-]?key|private[_-]?key(?:[_-]?id)?|auth)|(?:proxy-)?authorization|(?:set-)?cookie|[A-Za-z0-9_-]*(?:access|refresh|auth|id|session|bearer|api|oauth|csrf|private)[_-]?token)";

/** Each `name=value` of a Cookie header (the value up to `;`), unless already redacted. */
const COOKIE_VALUES = /((?:^|;)[ \t]*[^=;\s]+=)(?!\[redacted\])[^;\s]*/gi;
/** The first `name=value` of a Set-Cookie header: its attributes (`Path=/`) are not secret. */
const FIRST_COOKIE = /^([ \t]*[^=;\s]+=)(?!\[redacted\])[^;\s]*/i;

/** What replaces a credential pattern's match: a `$1`-style template, or a function of the match and its groups. */
type Replacement = string | ((match: string, ...groups: string[]) => string);

/**
 * A word a generator made rather than a writer: it has a digit, a case change or a symbol before its end. The
 * header pattern is case-insensitive, so this check on its value is a separate, case-sensitive test.
 */
const SECRET_SHAPED = /[0-9]|[a-z][A-Z]|[^A-Za-z0-9]./;

/** A word of 6 characters or more shaped like a generated secret (`8+` and `2FA` are not). */
function secretShaped(value: string): boolean {
  return value.length >= 6 && SECRET_SHAPED.test(value);
}

/** A digit or a lower-to-upper case change: what tells an issued credential from a word. */
const ISSUED_MARK = /[0-9]|[a-z][A-Z]/;
/** Lower-case words and numbers joined by hyphens, one word of 3 letters at least: `2025-dated`, `24-hour`. */
const NUMBERED_WORDS = /^(?=.*[a-z]{3})(?:[a-z]+|[0-9]+)(?:-(?:[a-z]+|[0-9]+))+$/;
/** Printable text with a colon: `user:password`, as a Basic credential decodes. */
const USER_PASSWORD = /^[\x20-\x7e]*:[\x20-\x7e]*$/;

/**
 * True when the word after `Bearer` or `Basic` is a credential rather than prose: a Bearer value of 16
 * characters, or with a digit or a case change unless it is words and numbers joined by hyphens; a Basic value
 * that decodes to `user:password`, or of 16 characters with a digit or a case change. "basic JavaScript",
 * "Basic Python3.11", "bearer token-based" and "bearer 2025-dated" are kept.
 */
function looksIssued(scheme: string, value: string): boolean {
  if (scheme.length === 6) {
    return value.length >= 16 || (ISSUED_MARK.test(value) && !NUMBERED_WORDS.test(value));
  }
  if (value.length >= 16 && ISSUED_MARK.test(value)) return true;
  try {
    return /^[A-Za-z0-9+/]+={0,2}$/.test(value) && USER_PASSWORD.test(atob(value));
  } catch {
    return false;
  }
}

/** What a named value's name holds when it names a credential (`api_key=`, `DB_PASSWORD=`), as a pattern source. */
const NAMED_VALUE_NAMES =
  "password|passwd|pwd|passphrase|secret|token|api[_-]?key|access[_-]?key|account[_-]?key|sharedaccesskey|signature";

/**
 * A value that stands in for a credential rather than being one, as documentation, templates and shell
 * snippets write them: a variable or command (`$OPENAI_API_KEY`, `${DB_PASSWORD}`, `$(cat key)`,
 * `{{ api_key }}`, `%TOKEN%`), a hint (`<your-key>`, `your-api-key`), an upper-case name (`YOUR_API_KEY`), or a
 * masked or elided value (`xxxx`, `****`, `sk-...`, `sk-…abcd`, `abcd****`: a mask after a prefix such as
 * `sk-`, at most 4 characters shown around it).
 */
const PLACEHOLDER =
  /^(?:\$[{(].*|\$[A-Z_][A-Z0-9_]*|[Yy]our[-_][A-Za-z0-9_-]*|\{\{[^}]*\}\}|%[A-Z_][A-Z0-9_]*%|<[^>]*>|[A-Z]+(?:_[A-Z]+)+|[xX]{4,}|(?:[A-Za-z0-9]+[-_])*(?:\.\.\.|…|\*{3,})[A-Za-z0-9]{0,4}|[A-Za-z0-9]{1,4}\*{3,})$/;

/**
 * A value that is code rather than a credential: a property path of letters (`process.env.OPENAI_API_KEY!`,
 * `keys.web.client_secret`, `record.idToken?.secret`), starting lower-case, without digits; or a TypeScript
 * primitive type, alone or before code punctuation (`password: string`, `(authToken: string):`).
 */
const CODE_REFERENCE =
  /^(?:[a-z][A-Za-z_]*(?:\??\.[A-Za-z_]+)+[!?]?|(?:string|number|boolean|unknown|undefined|null|void|bigint)(?:[)\],;:|>[{=].*)?)$/;

/**
 * True when a credential pattern's `value` stands in for a credential rather than being one: a placeholder, code
 * that reads it from elsewhere, or a function called (`secret = readFileSync(…)`, `api_key=getKey()`: the text
 * after the match is `(`). `rest` is what `String.prototype.replace` passes a replacer after the groups: the
 * match's offset and the whole text.
 */
function standsIn(match: string, value: string, rest: readonly unknown[]): boolean {
  if (PLACEHOLDER.test(value) || CODE_REFERENCE.test(value)) return true;
  const [offset, text] = rest;
  return (
    typeof offset === "number" && typeof text === "string" && text.charCodeAt(offset + match.length) === 40
  );
}

/**
 * A named value's replacement: the value redacted unless it stands in for a credential ({@link standsIn}) or is a
 * signature's value shorter than 16 characters (`signature=ed25519` names an algorithm; issued signatures are
 * longer).
 */
function redactNamedValue(match: string, name: string, value: string, ...rest: unknown[]): string {
  if (standsIn(match, value, rest)) return match;
  return value.length < 16 && /signature/i.test(name) ? match : name + REDACTED;
}

/**
 * Credential-shaped text in string values, each with what is kept of it: the scheme and user of a URL, the
 * `Bearer`/`Basic` word, the well-known key prefix. Only the secret part becomes `[REDACTED]`. Exported for the
 * test that the precheck below never skips a string one of them would change.
 * @internal
 */
export const CREDENTIAL_VALUE_PATTERNS: readonly (readonly [RegExp, Replacement])[] = [
  // scheme://user:password@host: the password (one already redacted, by any spelling, is left as it is), up
  // to the last `@` before the path: a password with an unencoded `@` goes whole. `?` and `#` end the host
  // part, so `http://localhost:8000?user=bob@example.com` has no password.
  // A scheme starts where a run of scheme characters starts (`\b` would try again after every `-` or `.` of a
  // long run, which made the scan quadratic).
  [/(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*:\/\/[^\s/@:]*:)(?!\[redacted\]@)[^\s/?#]+(?=@)/gi, `$1${REDACTED}`],
  // PEM and PGP private keys (`-----BEGIN RSA PRIVATE KEY-----` … `-----END RSA PRIVATE KEY-----`,
  // `-----BEGIN PGP PRIVATE KEY BLOCK-----` …), whole.
  [
    /-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|$)/g,
    REDACTED,
  ],
  // Authorization header values, when they look issued (see `looksIssued`), so prose ("bearer instruments",
  // "basic JavaScript", "a Bearer token-based scheme") is left alone.
  [
    /\b([Bb]earer|BEARER|[Bb]asic|BASIC)(\s+)([A-Za-z0-9._~+/=-]{8,})/g,
    (match: string, scheme: string, space: string, value: string) =>
      looksIssued(scheme, value) ? scheme + space + REDACTED : match,
  ],
  // JSON Web Tokens (header.payload.signature, both JSON parts base64url of `{"`).
  [/\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, REDACTED],
  // OpenAI / Anthropic style secret keys: sk-..., sk-proj-..., sk-ant-...; a body of words without a digit or a
  // case change, under 24 characters, is a name (`sk-learn-compatible`), kept.
  [
    /\b(sk-)([A-Za-z0-9_-]{8,})/g,
    (match: string, prefix: string, body: string) =>
      body.length >= 24 || ISSUED_MARK.test(body) ? prefix + REDACTED : match,
  ],
  // GitHub, GitLab and Slack tokens.
  [/\b(gh[pousr]_|github_pat_|glpat-|xox[abprs]-)[A-Za-z0-9_-]{8,}/g, `$1${REDACTED}`],
  // Model providers' and package registries' keys with their own prefix (Groq, Hugging Face, xAI, Perplexity,
  // Replicate, Stripe, npm): the prefix and at least 20 letters or digits, so an identifier such as
  // `hf_model_name` is kept.
  [/\b(gsk_|hf_|xai-|pplx-|r8_|[sr]k_(?:live|test)_|npm_)[A-Za-z0-9]{20,}/g, `$1${REDACTED}`],
  // Keys of services LLM programs call whose bodies hold `_`, `-` or `.`: Pinecone (`pcsk_`), LangSmith
  // (`lsv2_pt_`, `lsv2_sk_`), Tavily (`tvly-`), Cerebras (`csk-`), Stripe webhooks (`whsec_`), Google OAuth
  // client secrets and access tokens (`GOCSPX-`, `ya29.`), Slack apps (`xapp-`), Docker Hub (`dckr_pat_`) and
  // PyPI (`pypi-`); and SendGrid's `SG.<id>.<secret>`.
  [
    /\b(pcsk_|lsv2_(?:pt|sk)_|tvly-|csk-|whsec_|GOCSPX-|ya29\.|xapp-|dckr_pat_|pypi-)[A-Za-z0-9._-]{20,}/g,
    `$1${REDACTED}`,
  ],
  [/\b(SG\.)[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}/g, `$1${REDACTED}`],
  // ElevenLabs-style keys: `sk_` and 32 or more hex digits.
  [/\b(sk_)[0-9a-f]{32,}\b/g, `$1${REDACTED}`],
  // Every cookie value of a `Cookie:` header line (the names kept), and the value of a `Set-Cookie:` header's
  // cookie; one already redacted is left as it is.
  [
    /(?<![A-Za-z0-9_-])((?:set-)?cookie[ \t]*:[ \t]*)([^\r\n"']+)/gi,
    (_match: string, name: string, cookies: string) =>
      name +
      (/^set/i.test(name)
        ? cookies.replace(FIRST_COOKIE, `$1${REDACTED}`)
        : cookies.replace(COOKIE_VALUES, `$1${REDACTED}`)),
  ],
  // `curl -u user:password` and `curl --user "user:password"`: the password.
  [/((?:^|\s)(?:-u|--user)(?:[ \t]+|=)["']?[^\s:"']+:)(?!\[redacted\]|\/\/)[^\s"']+/gi, `$1${REDACTED}`],
  // Python HTTP clients' credentials as a tuple or an auth object: `auth=("bob", "…")`,
  // `HTTPBasicAuth('bob', '…')`, `aiohttp.BasicAuth("bob", "…")`: the second string.
  [
    /((?:\bauth[ \t]*=[ \t]*|\b[A-Za-z]*Auth)\([ \t]*(["'])[^"'\n]*\2[ \t]*,[ \t]*(["']))(?!\[REDACTED\])[^"'\n]+(?=\3)/g,
    `$1${REDACTED}`,
  ],
  // The response of HTTP Digest authentication (`response="<32 or more hex digits>"`), a replayable hash.
  [/(\bresponse=["']?)(?!\[REDACTED\])[0-9a-f]{32,}/gi, `$1${REDACTED}`],
  // Webhook URLs whose path is the secret: Slack (`hooks.slack.com/services/T…/B…/<secret>`), Discord
  // (`/api/webhooks/<id>/<token>`) and Telegram bots (`api.telegram.org/bot<id>:<token>`).
  [/(hooks\.slack\.com\/services\/[A-Za-z0-9]+\/[A-Za-z0-9]+\/)[A-Za-z0-9]+/g, `$1${REDACTED}`],
  [/(discord(?:app)?\.com\/api\/webhooks\/[0-9]+\/)[A-Za-z0-9_-]+/g, `$1${REDACTED}`],
  [/(api\.telegram\.org\/(?:file\/)?bot[0-9]+:)[A-Za-z0-9_-]+/g, `$1${REDACTED}`],
  // A key as a URL's user, as Sentry DSNs carry it (`https://<32 hex>@o1.ingest.sentry.io/2`).
  [/(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*:\/\/)[0-9a-f]{32}(?=@)/gi, `$1${REDACTED}`],
  // Credentials written as named values: `?api_key=…`, `&access_token=…`, `;Password=…;`, `AWS_SECRET_ACCESS_KEY=…`,
  // and a bare `key=`, `sig=`, `auth=` or `pass=` in a query (`?key=…`, how Google APIs take their key; Azure
  // SAS signatures); one already redacted, by any
  // spelling, is left. Code is not a credential: a value stops at brackets, and `None`, `True`, `null` … and
  // lower-case dotted names are kept (`def f(api_key=None)`, `OpenAI(api_key=os.environ[…])`,
  // `DataCollator(pad_token=tok.eos_token)`). A match starts only where a name starts (not after
  // each `_` of one), so the scan stays linear.
  [
    new RegExp(
      `(?<![A-Za-z0-9_-])((?:[A-Za-z0-9_-]*(?:${NAMED_VALUE_NAMES})|(?<=[?&])(?:key|sig|auth|pass))=)(?!\\[redacted\\]|\\$[{(])(?!(?:None|True|False|null|undefined|true|false|nil|[a-z_]+(?:\\.[a-z_]+)+)(?![^\\s&;"',()[\\]{}<>]))([^\\s&;"',()[\\]{}<>]+)`,
      "gi",
    ),
    redactNamedValue,
  ],
  // The same in a URL-encoded query inside another URL (`?next=%2Fcb%3Fapi_key%3D…`): the value ends at `%26`.
  [
    new RegExp(
      `((?:(?<![A-Za-z0-9_-])[A-Za-z0-9_-]*(?:${NAMED_VALUE_NAMES})|(?<=%3F|%26)(?:key|sig|auth|pass))%3D)(?!\\[redacted\\])((?:(?!%26)[^\\s&;"',()[\\]{}<>])+)`,
      "gi",
    ),
    redactNamedValue,
  ],
  // The same names with a quoted value, or spaces around `=` (.env files, shell, TOML, INI, JAAS, code):
  // `OPENAI_API_KEY="…"`, `password='…'`, `api_key = "…"` always; `password = …` unquoted only when the word
  // has a digit or a case change and 6 characters (`token = None`, `api_key = os.getenv(…)` are kept).
  [
    new RegExp(
      `(?<![A-Za-z0-9_-])([A-Za-z0-9_-]*(?:${NAMED_VALUE_NAMES})[ \\t]*=[ \\t]*["'])(?!\\[redacted\\])([^"'\\n]+)(?=["'])`,
      "gi",
    ),
    redactNamedValue,
  ],
  [
    new RegExp(
      `(?<![A-Za-z0-9_-])([A-Za-z0-9_-]*(?:${NAMED_VALUE_NAMES})(?:[ \\t]+=[ \\t]*|=[ \\t]+))(?!\\[redacted\\])([^\\s&;"',()[\\]{}<>]+)`,
      "gi",
    ),
    (match: string, name: string, value: string, ...rest: unknown[]) =>
      value.length >= 6 && ISSUED_MARK.test(value) && !standsIn(match, value, rest) ? name + REDACTED : match,
  ],
  // An environment variable set by name in code: `os.environ["OPENAI_API_KEY"] = "…"`, `ENV['DB_PASSWORD'] = '…'`.
  [
    /(\[[ \t]*["'][A-Za-z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD)["'][ \t]*\][ \t]*=[ \t]*["'])(?!\[redacted\])[^"'\n]+(?=["'])/gi,
    `$1${REDACTED}`,
  ],
  // Environment variables named `…_KEY` (`AZURE_OPENAI_KEY=…`, `APP_KEY="…"`): upper case only, so code's
  // `sort_key=name` is kept.
  [
    /(?<![A-Za-z0-9_])([A-Z][A-Z0-9_]*_KEY[ \t]*=[ \t]*["'`]?)(?!\[REDACTED\]|\$[{(])([^\s&;"'`,()[\]{}<>]+)/g,
    redactNamedValue,
  ],
  // Credentials as members of JSON inside a string (a request body, a tool call's arguments): `"apiKey": "…"`,
  // `"Authorization": "…"`; and of a dict printed with single quotes (Python's repr, util.inspect):
  // `{'x-api-key': '…'}`.
  [
    new RegExp(
      `("${MEMBER_NAMES}(\\\\*)"\\s*:\\s*\\2")(?!\\[redacted\\])[^\\n]+?(?=(?<!\\\\)(?:\\2\\2\\\\\\\\)*\\2")`,
      "gi",
    ),
    `$1${REDACTED}`,
  ],
  [new RegExp(`('${MEMBER_NAMES}'\\s*:\\s*')(?!\\[redacted\\])[^'\\n]+`, "gi"), `$1${REDACTED}`],
  // Credentials written as `Name: value`, as an HTTP header or a YAML line: `Authorization: Token …` (the
  // scheme word kept), `x-api-key: …`, `api-key: …` (Azure OpenAI), `Ocp-Apim-Subscription-Key: …`,
  // `client_secret: "…"`. One value word goes, up to a space, quote or separator, when it has a digit, a
  // symbol inside or a case change, as a generated secret has, and is not a placeholder (prose such as
  // `Authorization: the process.` and a template's `api_key: ${OPENAI_API_KEY}` are kept); a value already redacted, whole or after its scheme word, is left as it is. A match starts only
  // where a name starts.
  [
    /(?<![A-Za-z0-9_-])((?:(?:proxy-)?authorization[ \t]*:[ \t]*["'`]?(?:[A-Za-z]+[0-9]?(?:-[A-Za-z0-9]+){0,3}[ \t]+(?=[^\s"',;]))?|[A-Za-z0-9_-]*(?:password|passwd|passphrase|secret|api[_-]?key|access[_-]?key|account[_-]?key|subscription[_-]?key|private[_-]?key|auth[_-]?key|(?:access|refresh|auth|api|session|bearer|id|sas|private)[_-]?token)[ \t]*:[ \t]*)["']?)(?!\[redacted\])([^\s"',;]+)(?![^\s"',;])(?![ \t]+\[redacted\])/gi,
    (match: string, name: string, value: string, ...rest: unknown[]) =>
      secretShaped(value) && !standsIn(match, value, rest) ? name + REDACTED : match,
  ],
  // AWS access key ids and Google API keys.
  [/\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g, REDACTED],
  [/\bAIza[0-9A-Za-z_-]{30,}/g, REDACTED],
];

/**
 * One cheap test before the patterns above: every credential they match contains one of these literals, with
 * the same case the pattern requires (`://` for the URL pattern, whose only case-insensitive part is the
 * scheme; `=` for a named value, `%3D` for one URL-encoded; `":` for a JSON member; `Auth(` for a Python auth
 * object; a `:` right after the last letters of a credential name, such as `key` or `ken`, for a `Name: value`). Most strings of an event (names, prose, numbers as
 * text) fail it and are not scanned further; text holding JSON is scanned whole.
 * Case-sensitive, and each alternative starts at a character rare in prose (`-`, `_`, `J`, `:`, `=`, `"`,
 * capitals) and looks back from there for the rest of its literal: a scan tries alternatives only at those
 * characters, so it ran about three times as fast as the same literals written forwards (`sk-`, `eyJ`, `hf_`
 * start at letters common in any text) on short names and English prose alike.
 */
const CREDENTIAL_PRECHECK =
  /J(?<=eyJ)|[-_.](?<=(?:sk|rk|hf|xai|pplx|r8|npm|gh[pousr]|github_pat|glpat|xox[abprs]|pcsk|lsv2|tvly|whsec|GOCSPX|ya29|xapp|dckr|pypi|SG|hooks|discord|discordapp|telegram)[-_.])|:(?:\/\/|(?<=(?:[Zz][Aa][Tt][Ii][Oo][Nn]|[Oo][Rr][Dd]|[Ss][Ww][Dd]|[Aa][Ss][Ee]|[Rr][Ee][Tt]|[Kk][Ee][Yy]|[Kk][Ee][Nn]|[Kk][Ii][Ee])[ \t]*:))|=|[Bb](?:earer|asic)|B(?:EARER|ASIC)|A(?:KIA|SIA|Iza)|PRIVATE KEY|["']\s*:|-(?:u|-user)[ \t=]|%(?=3[Dd])|\((?<=Auth\()/;
/** Shorter strings cannot hold any of the credentials above (the shortest is a named value: `pwd=x`). */
const MIN_CREDENTIAL_LENGTH = 5;

/**
 * `text` with the secret part of credential-shaped substrings replaced by `[REDACTED]`: URL passwords
 * (`https://user:[REDACTED]@host`), `Bearer`/`Basic` values, JWTs, `sk-…` keys, GitHub/GitLab/Slack tokens,
 * other providers' prefixed keys (`gsk_`, `hf_`, `xai-`, `pplx-`, `r8_`, `sk_live_`, `npm_`), AWS access key
 * ids and Google API keys. Returns `text` itself when nothing matched.
 */
export function redactCredentialText(text: string): string {
  if (text.length < MIN_CREDENTIAL_LENGTH || !CREDENTIAL_PRECHECK.test(text)) return text;
  return applyCredentialPatterns(text);
}

/** @internal `text` after every credential pattern, without the precheck (for the test that it hides nothing). */
export function applyCredentialPatterns(text: string): string {
  let out = text;
  for (const [pattern, replacement] of CREDENTIAL_VALUE_PATTERNS) {
    out =
      typeof replacement === "string" ? out.replace(pattern, replacement) : out.replace(pattern, replacement);
  }
  return out;
}

/**
 * @internal The keys of one object as they are written: `names` itself when none holds a credential, else a copy
 * with each key that does scrubbed like a string value. Two keys must not become one (that would silently drop
 * a value), so a scrubbed key that equals another key of the object gets the first free suffix ` (2)`, ` (3)` …:
 * two `sk-…` keys become `sk-[REDACTED]` and `sk-[REDACTED] (2)`. Keys left as they are always keep their name,
 * so the result does not depend on where in the object the scrubbed key sits.
 */
export function scrubKeyNames(names: readonly string[], keys: KeyRedaction): readonly string[] {
  let out: string[] | undefined;
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    if ((keys.actionsOf(name) & SCRUB_KEY) === 0) continue;
    out ??= names.slice();
    out[i] = redactCredentialText(name);
  }
  if (out === undefined) return names;
  const taken = new Set<string>();
  for (let i = 0; i < names.length; i++) if (out[i] === names[i]) taken.add(names[i] as string);
  for (let i = 0; i < names.length; i++) {
    const scrubbed = out[i] as string;
    if (scrubbed === names[i]) continue;
    let free = scrubbed;
    for (let n = 2; taken.has(free); n++) free = `${scrubbed} (${n})`;
    taken.add(free);
    out[i] = free;
  }
  return out;
}

/** The matcher of every key redactor, so the runtime can redact `data` without building an event. */
const keyRedactions = new WeakMap<Function, KeyRedaction>();

/**
 * A redactor for a list of names: every property of `data` (at any depth, inside arrays too) whose name
 * contains one of the names, compared case-insensitively and ignoring `_`, `-`, `.` and spaces (`api_key`
 * matches `apiKey`, `X-API-Key` and `openAICompatibleApiKey`), has its value replaced by `"[REDACTED]"`. The
 * name `token` matches as a word of a longer name (`accessToken`, `x-auth-token`) but not counts of
 * language-model tokens (`max_tokens`, `prompt_tokens`, `token_count`) nor a bare `token` key. String values
 * and object keys anywhere in `data` also have credential-shaped text replaced (see {@link redactCredentialText}
 * and {@link scrubKeyNames}).
 */
export function createKeyRedactor(keys: readonly string[]): (event: StreamllEvent) => StreamllEvent {
  const redaction = new KeyRedaction(keys);
  const redactor = (event: StreamllEvent): StreamllEvent => {
    if (redaction.size === 0) return event;
    const data = redactObject(event.data, redaction);
    const header = redactHeader(event, redaction);
    const eventType = scrubName(event.event_type, redaction);
    if (data === event.data && header === event && eventType === event.event_type) return event;
    return { ...header, event_type: eventType, data };
  };
  keyRedactions.set(redactor, redaction);
  return redactor;
}

/** The fields of an event's header that carry names and labels a program may build from data. */
interface HeaderNames {
  readonly module_name: string;
  readonly method_name: string | null;
  readonly operation: string | null;
  readonly tags: Readonly<Record<string, string>>;
}

/**
 * @internal `fields` with credential-shaped text scrubbed from `module_name`, `method_name` and `operation`
 * (a span named after the URL it fetches) and its tags redacted as data is (by name, and their text); the
 * same object when nothing changed. The runtime applies it once per envelope, the key redactor per event.
 */
export function redactHeader<T extends HeaderNames>(fields: T, keys: KeyRedaction | undefined): T {
  if (keys === undefined || keys.size === 0) return fields;
  const moduleName = scrubName(fields.module_name, keys);
  const methodName = scrubName(fields.method_name, keys);
  const operation = scrubName(fields.operation, keys);
  const tags = redactTags(fields.tags, keys);
  if (
    moduleName === fields.module_name &&
    methodName === fields.method_name &&
    operation === fields.operation &&
    tags === fields.tags
  ) {
    return fields;
  }
  return { ...fields, module_name: moduleName, method_name: methodName, operation, tags };
}

/** @internal A name with credential-shaped text scrubbed; anything but a string as it is. */
export function scrubName<T>(name: T, keys: KeyRedaction): T {
  return typeof name === "string" ? (keys.scrub(name) as T) : name;
}

/** Tags redacted as data is; as they are unless they are an object of strings (as the runtime's always are). */
function redactTags<T>(tags: T, keys: KeyRedaction): T {
  if (typeof tags !== "object" || tags === null || Array.isArray(tags)) return tags;
  for (const value of Object.values(tags)) if (typeof value !== "string") return tags;
  return redactObject(tags as unknown as JsonObject, keys) as T;
}

/**
 * @internal The matcher of a redactor made by {@link createKeyRedactor}, or `undefined` for any other function.
 * Such a redactor only changes `data` and the names and tags {@link redactHeader} covers, which the runtime
 * applies the same way without the event object.
 */
export function keyRedactorKeysOf(redactor: unknown): KeyRedaction | undefined {
  return typeof redactor === "function" ? keyRedactions.get(redactor) : undefined;
}

/** @internal What a key redactor does to `data`: the same object when nothing matched, else a redacted copy. */
export function redactDataKeys(data: JsonObject, keys: KeyRedaction): JsonObject {
  return keys.size === 0 ? data : redactObject(data, keys);
}

/**
 * Returns `value` itself when nothing inside it matched, so events without sensitive keys are not copied.
 * Input is sanitised JSON (depth already capped), so plain recursion is safe.
 */
function redactValue(value: JsonValue, keys: KeyRedaction): JsonValue {
  if (typeof value === "string") return keys.scrub(value);
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    let copy: JsonValue[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item = value[i] as JsonValue;
      const redacted = redactValue(redactedPair(item, keys) as JsonValue, keys);
      if (redacted !== item) {
        copy ??= value.slice();
        copy[i] = redacted;
      }
    }
    return copy ?? value;
  }
  return redactObject(value, keys);
}

/**
 * @internal `pairs` of a Map as the sanitiser writes it (`{"$map": [[key, value], …]}`), with the value of each
 * pair whose key is a redacted name replaced by `[REDACTED]`, as a property of that name would be: `pairs`
 * itself when no pair changes. Only the first `limit` items are read (the rest are cut by the caller).
 */
/**
 * @internal True when binary data, given as the base64 an event writes it in, holds credential-shaped text
 * (a captured HTTP request, a file read into a Buffer): read byte for byte as text and scanned as strings are.
 */
export function binaryHoldsCredential(base64: string, keys: KeyRedaction): boolean {
  return base64 !== REDACTED && bytesHoldCredential(Buffer.from(base64, "base64"), keys);
}

/** @internal True when `bytes`, read byte for byte as text, hold credential-shaped text. */
export function bytesHoldCredential(bytes: Buffer, keys: KeyRedaction): boolean {
  if (keys.size === 0 || bytes.length === 0) return false;
  const text = bytes.toString("latin1");
  return keys.scrub(text) !== text;
}

/** The most keys a `{ name, value }` entry is looked for in: such entries are small (HAR adds a `comment`). */
const NAMED_VALUE_MAX_KEYS = 4;

/**
 * @internal For a `{ name, value }` entry (HAR headers, Kubernetes env, `{ Key, Value }` tags) whose name is
 * redacted, the key of its value (`value` or `Value`); otherwise `undefined`. Reads only the name, and only in
 * objects of a few keys, so the common object costs one length check.
 */
export function namedValueKey(
  obj: Readonly<Record<string, unknown>>,
  names: readonly string[],
  keys: KeyRedaction,
): string | undefined {
  if (names.length < 2 || names.length > NAMED_VALUE_MAX_KEYS) return undefined;
  let valueKey: string | undefined;
  let name: unknown;
  for (const key of names) {
    if (key === "value" || key === "Value") valueKey = key;
    else if (key === "name" || key === "Name" || key === "key" || key === "Key") name = obj[key];
  }
  return valueKey !== undefined && typeof name === "string" && keys.has(name) ? valueKey : undefined;
}

/**
 * @internal `value` as written under redaction: a `[name, value]` pair whose name is redacted becomes
 * `[name, "[REDACTED]"]` (a new array; the value is never read), anything else is returned as it is.
 */
export function redactedPair(value: unknown, keys: KeyRedaction): unknown {
  if (!Array.isArray(value) || value.length !== 2) return value;
  const [name, item] = value as [unknown, unknown];
  return typeof name === "string" && item !== REDACTED && keys.has(name) ? [name, REDACTED] : value;
}

export function redactPairValues(
  pairs: unknown,
  keys: KeyRedaction,
  limit = Number.POSITIVE_INFINITY,
): unknown {
  if (!Array.isArray(pairs) || keys.size === 0) return pairs;
  let copy: unknown[] | undefined;
  const n = Math.min(pairs.length, limit);
  for (let i = 0; i < n; i++) {
    const pair: unknown = pairs[i];
    const redacted = redactedPair(pair, keys);
    if (redacted !== pair) {
      copy ??= pairs.slice(0, pairs.length);
      copy[i] = redacted;
    }
  }
  return copy ?? pairs;
}

function redactObject(value: JsonObject, keys: KeyRedaction): JsonObject {
  const names = Object.keys(value);
  if (names.length === 1 && names[0] === "$map" && !keys.has("$map")) {
    const pairs = redactPairValues(value.$map, keys) as JsonValue;
    if (pairs !== value.$map) return redactObject({ $map: pairs }, keys);
  }
  const written = scrubKeyNames(names, keys);
  const named = namedValueKey(value, names, keys);
  // A renamed key changes the object's key list: it is rebuilt in order rather than copied and patched.
  let copy: JsonObject | undefined = written === names ? undefined : {};
  for (let i = 0; i < names.length; i++) {
    const key = names[i] as string;
    const item = value[key] as JsonValue;
    // The name as given decides, so a key such as `sk-…SECRET…` keeps its value redacted once scrubbed.
    let redacted = keys.has(key) || key === named ? REDACTED : redactValue(item, keys);
    if (key === BYTES_KEY && typeof redacted === "string" && binaryHoldsCredential(redacted, keys)) {
      redacted = REDACTED;
    }
    if (written !== names) defineValue(copy as JsonObject, written[i] as string, redacted);
    else if (redacted !== item) {
      copy ??= { ...value };
      defineValue(copy, key, redacted);
    }
  }
  return copy ?? value;
}

function defineValue(target: JsonObject, key: string, value: JsonValue): void {
  // defineProperty, not assignment: a key named `__proto__` must stay a plain property.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
