import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_REDACT_KEYS } from "../instrument/configure";
import type { StreamllEvent } from "./event-schema";
import { applyCredentialPatterns, createKeyRedactor, REDACTED, redactCredentialText } from "./redact";

const event = (data: StreamllEvent["data"]): StreamllEvent => ({
  schema_version: "1.0",
  event_id: "event-id-0001",
  execution_id: "execution-01",
  span_id: "span-id-0001",
  parent_span_id: null,
  timestamp: "2026-01-01T00:00:00.000Z",
  module_name: "m",
  method_name: "forward",
  event_type: "start",
  operation: null,
  data,
  tags: { password: "tags are not data" },
  module_version: null,
  code_signature: null,
  git_commit: null,
});

describe("createKeyRedactor", () => {
  it("replaces matching keys at any depth, inside arrays too, case-insensitively", () => {
    const redact = createKeyRedactor(["password", "apiKey"]);
    const input = event({
      inputs: [{ user: "ada", PassWord: "hunter2" }, { nested: { deeper: { APIKEY: { even: "objects" } } } }],
      outputs: "password",
    });
    const out = redact(input);
    expect(out.data).toEqual({
      inputs: [{ user: "ada", PassWord: REDACTED }, { nested: { deeper: { APIKEY: REDACTED } } }],
      outputs: "password",
    });
    // Tags are redacted as data is: a label named like a credential is one.
    expect(out.tags).toEqual({ password: REDACTED });
  });

  it("matches names by substring, case-insensitively, ignoring separators", () => {
    const redact = createKeyRedactor(["password", "api_key"]);
    const out = redact(
      event({
        db_password: "a",
        Passwords: ["b"],
        openAICompatibleApiKey: "c",
        "X-API-Key": "d",
        apikey: "e",
        keep: "password is a word in this value",
      }),
    );
    expect(out.data).toEqual({
      db_password: REDACTED,
      Passwords: REDACTED,
      openAICompatibleApiKey: REDACTED,
      "X-API-Key": REDACTED,
      apikey: REDACTED,
      keep: "password is a word in this value",
    });
  });

  it("matches token as a word of a credential name, never counts of model tokens", () => {
    const redact = createKeyRedactor(DEFAULT_REDACT_KEYS);
    const secret = "opaque-credential-value";
    const credentials = [
      "accessToken",
      "refresh_token",
      "id_token",
      "x-auth-token",
      "GITHUB_TOKEN",
      "tokenSecret",
    ];
    const counts = {
      usage: { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42, model: "gpt" },
      max_tokens: 256,
      maxTokens: 256,
      token_count: 3,
      tokenIndex: 1,
      token_index: 2,
      tokenizer: "cl100k",
      tokens: ["a", "b"],
      token: "streamed text",
      eos_token: "</s>",
    };
    const data = { ...counts, ...Object.fromEntries(credentials.map((k) => [k, secret])) };
    const out = redact(event(data));
    expect(out.data).toEqual({ ...counts, ...Object.fromEntries(credentials.map((k) => [k, REDACTED])) });
  });

  it("replaces only the secret part of credential-shaped values, anywhere in data", () => {
    const redact = createKeyRedactor(DEFAULT_REDACT_KEYS);
    const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const out = redact(
      event({
        note: "use sk-proj-ABCDEF1234567890abcdef for it",
        header: "Bearer abc.DEF-123_456~xyz",
        basic: "Basic dXNlcjpwYXNzd29yZA==",
        nested: [{ text: `token was ${jwt} yesterday` }],
        url: "postgres://ada:s3cr3t-pw@db.internal:5432/app",
        github: "ghp_0123456789abcdefABCDEF0123456789abcd",
        aws: "AKIAIOSFODNN7EXAMPLE",
        groq: "gsk_0123456789abcdefABCDEF0123456789abcdefABCDEF012345",
        huggingFace: "hf_0123456789abcdefABCDEF01234567",
        identifier: "hf_model_name_for_the_summariser_v2",
        prose: "the bearer instruments and Basic requirements, at https://example.com/a",
      }),
    );
    expect(out.data).toEqual({
      note: `use sk-${REDACTED} for it`,
      header: `Bearer ${REDACTED}`,
      basic: `Basic ${REDACTED}`,
      nested: [{ text: `token was ${REDACTED} yesterday` }],
      url: `postgres://ada:${REDACTED}@db.internal:5432/app`,
      github: `ghp_${REDACTED}`,
      aws: REDACTED,
      groq: `gsk_${REDACTED}`,
      huggingFace: `hf_${REDACTED}`,
      identifier: "hf_model_name_for_the_summariser_v2",
      prose: "the bearer instruments and Basic requirements, at https://example.com/a",
    });
    expect(redactCredentialText(String((out.data as { url: string }).url))).toBe(
      (out.data as { url: string }).url,
    );
  });

  it("does not copy or mutate events without matches", () => {
    const redact = createKeyRedactor(["secret"]);
    const data = { a: { b: [1, 2, { c: "d" }] } };
    const input = event(data);
    expect(redact(input)).toBe(input);
    const withSecret = event({ keep: { same: 1 }, x: { secret: "s" } });
    const out = redact(withSecret);
    expect(out).not.toBe(withSecret);
    expect(withSecret.data.x).toEqual({ secret: "s" });
    expect(out.data.keep).toBe(withSecret.data.keep);
  });

  it("keeps a __proto__ key a plain property", () => {
    const redact = createKeyRedactor(["__proto__"]);
    const data = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}');
    const out = redact(event(data));
    expect(Object.getOwnPropertyDescriptor(out.data, "__proto__")?.value).toBe(REDACTED);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("does nothing with an empty key list", () => {
    const input = event({ password: "x" });
    expect(createKeyRedactor([])(input)).toBe(input);
  });
});

/** Each text scrubbed to exactly its expected form. */
function expectScrubbed(cases: readonly (readonly [text: string, expected: string])[]): void {
  for (const [text, expected] of cases) expect(redactCredentialText(text)).toBe(expected);
}

/** Each text left exactly as it is. */
function expectKept(texts: readonly string[]): void {
  expectScrubbed(texts.map((text) => [text, text] as const));
}

describe("redactCredentialText", () => {
  it("skips only strings no credential pattern would change (the quick precheck hides nothing)", () => {
    // Text assembled from the credentials' own pieces in every case, so the patterns match often.
    const piece = fc.constantFrom(
      "sk-",
      "SK-",
      "Sk-",
      "eyJ",
      "EYJ",
      "eyj",
      "://",
      "https://",
      "HTTPS://",
      "user:",
      "@",
      "Bearer ",
      "bearer ",
      "BEARER ",
      "BeArEr ",
      "Basic ",
      "basic ",
      "BASIC ",
      "ghp_",
      "GHP_",
      "github_pat_",
      "GITHUB_PAT_",
      "glpat-",
      "gsk_",
      "hf_",
      "HF_",
      "xai-",
      "pplx-",
      "r8_",
      "sk_live_",
      "rk_test_",
      "npm_",
      "abcdefghij0123456789",
      "xoxb-",
      "XOXB-",
      "AKIA",
      "akia",
      "ASIA",
      "AIza",
      "aiza",
      ".",
      " ",
      "abcDEF123_-xyz",
      "0123456789ABCDEF",
      "secretValue9",
      "=",
      "api_key=",
      "Password=",
      ";",
      "&",
      "-----BEGIN RSA PRIVATE KEY-----",
      "-----END RSA PRIVATE KEY-----",
      "PRIVATE KEY",
      '"apiKey":"',
      '\\"password\\": \\"',
      '"refresh_token" : "',
      "Authorization: ",
      "authorization:",
      "PROXY-AUTHORIZATION:\t",
      "Token ",
      "x-api-key: ",
      "Api-Key:",
      "Ocp-Apim-Subscription-Key: ",
      "password : '",
      "client_secret:",
      "sas_token: ",
      "[REDACTED]",
      "Question: ",
      "Cookie: ",
      "set-cookie:",
      "PRIVATE-TOKEN: ",
      "'x-api-key': '",
      "{'auth':'",
      '"Authorization":"',
      "?key=",
      "Cookie: a=",
      "; b=",
      " -u ",
      "--user=",
      "sk_0123456789abcdef0123456789abcdef",
      '"private_key_id":"',
      '["OPENAI_API_KEY"] = "',
      "&sig=",
      "pcsk_",
      "lsv2_pt_",
      "tvly-",
      "ya29.",
      "SG.",
      "hooks.slack.com/services/T0/B0/",
      "discord.com/api/webhooks/1/",
      "api.telegram.org/bot1:",
      "0123456789abcdef0123456789abcdef@",
      "-----BEGIN PGP PRIVATE KEY BLOCK-----",
      "api_key = ",
      'password="',
      "APP_KEY=",
      " = ",
      "&key=",
      "None",
      "(",
      "?",
      "#",
      "dXNlcjpwYXNz",
      "'",
      "\t",
      '"',
      "\\",
      "%3D",
      "%3F",
      "%26",
      "api_key%3D",
      "HTTPBasicAuth(",
      "auth=(",
      "response=",
      "6629fae49393a05397450978507c4ef1",
      "$",
      "${",
      "YOUR_API_KEY",
      "...",
      "signature=",
      '\\\\\\"',
      "Authorization: AWS4-HMAC-SHA256 ",
    );
    const text = fc
      .array(fc.oneof(piece, fc.string({ maxLength: 6 })), { maxLength: 12 })
      .map((p) => p.join(""));
    fc.assert(
      fc.property(text, (s) => {
        expect(redactCredentialText(s)).toBe(applyCredentialPatterns(s));
      }),
      { numRuns: 5000 },
    );
  });

  it("scrubs credentials written as named values, URL passwords holding an @, and PEM private keys", () => {
    expect(redactCredentialText("GET /v1/models?api_key=abc123&limit=5")).toBe(
      `GET /v1/models?api_key=${REDACTED}&limit=5`,
    );
    expect(redactCredentialText("Server=db;User Id=sa;Password=Pl4nted;Encrypt=true")).toBe(
      `Server=db;User Id=sa;Password=${REDACTED};Encrypt=true`,
    );
    expect(redactCredentialText("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG")).toBe(
      `export AWS_SECRET_ACCESS_KEY=${REDACTED}`,
    );
    expect(redactCredentialText("https://x.test/cb?access_token=t0k&state=1")).toBe(
      `https://x.test/cb?access_token=${REDACTED}&state=1`,
    );
    expect(redactCredentialText("https://maps.example.com/api?key=AIzaNotQuiteLong&sort_key=name")).toBe(
      `https://maps.example.com/api?key=${REDACTED}&sort_key=name`,
    );
    expect(redactCredentialText('{"model":"gpt-4o","apiKey":"Pl4nted-Passw0rd","n":1}')).toBe(
      `{"model":"gpt-4o","apiKey":"${REDACTED}","n":1}`,
    );
    expect(redactCredentialText('{"body":"{\\"client_secret\\": \\"s3cr3t-value\\"}"}')).toBe(
      `{"body":"{\\"client_secret\\": \\"${REDACTED}\\"}"}`,
    );
    expect(
      redactCredentialText('{"refresh_token":"abc.def-123","max_tokens":"100","eos_token":"</s>"}'),
    ).toBe(`{"refresh_token":"${REDACTED}","max_tokens":"100","eos_token":"</s>"}`);
    // Model-token counts and ordinary pairs are not credentials.
    expect(redactCredentialText("max_tokens=100, page=2, tokens=5")).toBe("max_tokens=100, page=2, tokens=5");
    expect(redactCredentialText("redis://user:pa@ss@127.0.0.1:6379/0")).toBe(
      `redis://user:${REDACTED}@127.0.0.1:6379/0`,
    );
    // As `Name: value`, an HTTP header or a YAML line; the scheme word of an Authorization value is kept.
    expect(redactCredentialText("Authorization: Token Pl4nted\r\nHost: x")).toBe(
      `Authorization: Token ${REDACTED}\r\nHost: x`,
    );
    expect(redactCredentialText("authorization: Bearer abc123")).toBe(`authorization: Bearer ${REDACTED}`);
    expect(redactCredentialText("Authorization: Bearer Pl4nted.Value")).toBe(
      `Authorization: Bearer ${REDACTED}`,
    );
    expect(redactCredentialText('curl -H "x-api-key: Pl4nted" -H "api-key: p2-Pl4nted"')).toBe(
      `curl -H "x-api-key: ${REDACTED}" -H "api-key: ${REDACTED}"`,
    );
    expect(redactCredentialText("Ocp-Apim-Subscription-Key: 0123abcd")).toBe(
      `Ocp-Apim-Subscription-Key: ${REDACTED}`,
    );
    expect(redactCredentialText("db:\n  password: 'hunter2'\n  client_secret: s3cr3t")).toBe(
      `db:\n  password: '${REDACTED}'\n  client_secret: ${REDACTED}`,
    );
    // Prompt labels, model-token counts, a bare `key:` and prose are not credentials.
    const prose =
      "Question: what is 2+2?\nmax_tokens: 100\nPrimary key: user_id\nAuthorization: the process.\nSecret: none";
    expect(redactCredentialText(prose)).toBe(prose);
    const pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
    expect(redactCredentialText(`key: ${pem} done`)).toBe(`key: ${REDACTED} done`);
  });

  it("scrubs headers, cookies and dict members however they are quoted", () => {
    const cases: [string, string][] = [
      [
        "Cookie: csrftoken=abc; sessionid=Pl4nted0123",
        `Cookie: csrftoken=${REDACTED}; sessionid=${REDACTED}`,
      ],
      ["Set-Cookie: sid=Pl4nted0123; Path=/; HttpOnly", `Set-Cookie: sid=${REDACTED}; Path=/; HttpOnly`],
      ["curl -u admin:Pl4nted0123 https://es", `curl -u admin:${REDACTED} https://es`],
      ['curl --user "elastic:Pl4nted0123" https://es', `curl --user "elastic:${REDACTED}" https://es`],
      [`key sk_${"0123456789abcdef".repeat(3)}`, `key sk_${REDACTED}`],
      ['{"private_key_id":"0123456789abcdef"}', `{"private_key_id":"${REDACTED}"}`],
      ["PRIVATE-TOKEN: glabc-Pl4nted9", `PRIVATE-TOKEN: ${REDACTED}`],
      ["X-Auth-Key: Pl4nted0123", `X-Auth-Key: ${REDACTED}`],
      [
        `{"Authorization":"Pl4nted0123","auth":"Pl4nted0456"}`,
        `{"Authorization":"${REDACTED}","auth":"${REDACTED}"}`,
      ],
      ["{'x-api-key': 'Pl4nted0123', 'model': 'gpt-4o'}", `{'x-api-key': '${REDACTED}', 'model': 'gpt-4o'}`],
      ["Authorization: Basic dXNlcjpwYXNzd29yZA==", `Authorization: Basic ${REDACTED}`],
      ["send Basic dXNlcjpwYXNz to it", `send Basic ${REDACTED} to it`],
      ["https://api.example.com/v1?key=Pl4nted0123", `https://api.example.com/v1?key=${REDACTED}`],
    ];
    expectScrubbed(cases);
  });

  it("scrubs quoted and spaced named values and upper-case *_KEY variables", () => {
    const cases: [string, string][] = [
      ['export OPENAI_API_KEY="Pl4nted0123"', `export OPENAI_API_KEY="${REDACTED}"`],
      ["DB_PASSWORD='hunter two'", `DB_PASSWORD='${REDACTED}'`],
      [
        'sasl.jaas.config=... username="u" password="Pl4nted0123";',
        `sasl.jaas.config=... username="u" password="${REDACTED}";`,
      ],
      ['api_key = "Pl4nted0123"', `api_key = "${REDACTED}"`],
      ["aws_secret_access_key = wJalrXUtnFEMI/K7MDENG", `aws_secret_access_key = ${REDACTED}`],
      ["AZURE_OPENAI_KEY=Pl4nted0123", `AZURE_OPENAI_KEY=${REDACTED}`],
      ["APP_KEY=base64:abcdEFGH", `APP_KEY=${REDACTED}`],
      ['os.environ["OPENAI_API_KEY"] = "Pl4nted0123"', `os.environ["OPENAI_API_KEY"] = "${REDACTED}"`],
    ];
    expectScrubbed(cases);
    const code = "token = None; api_key = os.getenv('X'); sorted(xs, sort_key=name); password = input()";
    expect(redactCredentialText(code)).toBe(code);
  });

  it("scrubs more services' keys, webhook URLs, DSNs, PGP keys and SAS signatures", () => {
    const k = "Pl4nted0123456789abcdefXYZ";
    const cases: [string, string][] = [
      [`pinecone pcsk_${k}_${k}`, `pinecone pcsk_${REDACTED}`],
      [`LANGSMITH lsv2_pt_${k}_0123`, `LANGSMITH lsv2_pt_${REDACTED}`],
      [`tavily tvly-dev-${k}`, `tavily tvly-${REDACTED}`],
      [`google ya29.${k}-x`, `google ya29.${REDACTED}`],
      [`sendgrid SG.${k}.${k}`, `sendgrid SG.${REDACTED}`],
      [
        `post to https://hooks.slack.com/services/T0123ABC/B0456DEF/${k} now`,
        `post to https://hooks.slack.com/services/T0123ABC/B0456DEF/${REDACTED} now`,
      ],
      [
        `https://discord.com/api/webhooks/123456789/${k}`,
        `https://discord.com/api/webhooks/123456789/${REDACTED}`,
      ],
      [`https://api.telegram.org/bot12345:${k}/getMe`, `https://api.telegram.org/bot12345:${REDACTED}/getMe`],
      [
        "dsn https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/2",
        `dsn https://${REDACTED}@o1.ingest.sentry.io/2`,
      ],
      [
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK----- done",
        `${REDACTED} done`,
      ],
      [
        `https://acct.blob.core.windows.net/c/b?sp=r&sig=${k}%3D`,
        `https://acct.blob.core.windows.net/c/b?sp=r&sig=${REDACTED}`,
      ],
      [`https://x.test/?auth=${k}&pass=${k}`, `https://x.test/?auth=${REDACTED}&pass=${REDACTED}`],
    ];
    expectScrubbed(cases);
    expectKept(["git@github.com:org/repo.git", "ssh://git@host:22/x", "see docs.python.org.", "auth=ok"]);
  });

  it("scrubs Python auth tuples, Digest responses, nested encoded queries and JSON at any depth", () => {
    const k = "Pl4nted0123456789";
    const digest = "6629fae49393a05397450978507c4ef1";
    expectScrubbed([
      [`requests.get(url, auth=("bob", "${k}"))`, `requests.get(url, auth=("bob", "${REDACTED}"))`],
      [`HTTPBasicAuth('bob', '${k}')`, `HTTPBasicAuth('bob', '${REDACTED}')`],
      [`aiohttp.BasicAuth("bob", "${k}")`, `aiohttp.BasicAuth("bob", "${REDACTED}")`],
      [
        `Authorization: Digest username="bob", nonce="dcd98b71", response="${digest}", qop=auth`,
        `Authorization: Digest username="bob", nonce="dcd98b71", response="${REDACTED}", qop=auth`,
      ],
      [
        `https://x.test/login?next=https%3A%2F%2Fy.test%2Fcb%3Faccess_token%3D${k}%26state%3D1`,
        `https://x.test/login?next=https%3A%2F%2Fy.test%2Fcb%3Faccess_token%3D${REDACTED}%26state%3D1`,
      ],
      [`?next=%2Fv1%3Fkey%3D${k}`, `?next=%2Fv1%3Fkey%3D${REDACTED}`],
      [
        `Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/s3/aws4_request, Signature=${digest}${digest}`,
        `Authorization: AWS4-HMAC-SHA256 ${REDACTED}, Signature=${REDACTED}`,
      ],
    ]);
    // JSON inside JSON inside JSON: the member is found at every depth of escaping, a quote inside the value
    // goes with it, and each level still parses.
    for (const password of ['a"b', "x\\y", k]) {
      let text = JSON.stringify({ user: "u", password, after: "kept" });
      for (let depth = 1; depth <= 4; depth++) {
        const out = redactCredentialText(text);
        let back: unknown = out;
        for (let i = 0; i < depth; i++) back = JSON.parse(back as string);
        expect(back).toEqual({ user: "u", password: REDACTED, after: "kept" });
        text = JSON.stringify(text);
      }
    }
  });

  it("keeps placeholders, short signatures and names that only start like keys", () => {
    expectKept([
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell variable, as a .env file writes it
      "export OPENAI_API_KEY=$OPENAI_API_KEY; token=${GITHUB_TOKEN}",
      'api_key="{{ api_key }}" password="<your-password>" secret=%CLIENT_SECRET%',
      "api_key=YOUR_API_KEY, password='xxxxxxxx', token=****, OPENAI_API_KEY=sk-...abcd",
      "signature=ed25519 and a scikit sk-learn-compatible API",
      "Authorization: OAuth2 flow, Authorization: SCRAM-SHA-256 handshake",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a YAML template's variable
      "openai:\n  api_key: ${OPENAI_API_KEY}\n  password: <your-password>\n",
      // Code that reads the credential from elsewhere, as READMEs and tool calls quote it.
      "ai({ apiKey: process.env.OPENAI_APIKEY!, clientSecret: keys.web.client_secret })",
      "const sig = format.derToJose(der); api_key=process.env.API_KEY; TOKEN=$(gh auth token)",
      "secret = readFileSync(path); const foundToken = getCookie(COOKIE_KEY); api_key=getKey()",
      "function check(password: string): void { idToken: record.idToken?.secret }",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a template literal in quoted code
      "export const VERSION_CACHE_KEY = `${PREFIX}.version`;",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a template literal in quoted code
      "headers: { Authorization: `Bearer ${await tokenSource.fresh()}` }, password: 'your-password'",
      "node app.js | pino-couch -U https://couch-server -d logs; curl -u http://localhost:8080/logs",
    ]);
    // Quoted header values and URLs after -u still lose their secrets.
    expectScrubbed([
      [
        `headers: { Authorization: "Bearer Pl4nted0123" }`,
        `headers: { Authorization: "Bearer ${REDACTED}" }`,
      ],
      [`pino-mq -u "amqp://guest:Pl4nted@localhost/"`, `pino-mq -u "amqp://guest:${REDACTED}@localhost/"`],
    ]);
    // A password that only starts like a type is not one.
    expect(redactCredentialText("password: null-pointer-2024")).toBe(`password: ${REDACTED}`);
    // A `$` that starts a real password is not a variable.
    expect(redactCredentialText("password=$ecret123")).toBe(`password=${REDACTED}`);
    // Nor is a password with stars or dots inside a mask.
    expect(redactCredentialText("password=Pass***word token=a...bcdef")).toBe(
      `password=${REDACTED} token=${REDACTED}`,
    );
  });

  it("keeps prose and code that only look like credentials", () => {
    expectKept([
      "Learn basic JavaScript and basic TypeScript with a basic step-by-step guide.",
      "Basic Python3.11 setup; a Bearer token-based scheme; bearer 2025-dated tokens, a Bearer 24-hour pass.",
      "Password: 8+ characters. Authorization: 2FA required.",
      "sorted(items, key=lambda x: x[1]) and max(scores, key=scores.get)",
      "def __init__(self, api_key=None, token=None): from_pretrained(name, token=True)",
      'OpenAI(api_key=os.environ["OPENAI_API_KEY"]); DataCollator(pad_token=tok.eos_token)',
      "Visit http://localhost:8000?user=bob@example.com or https://example.com:8443#a@b",
    ]);
  });

  it("redacts pwd and passphrase keys by default", () => {
    const out = createKeyRedactor(DEFAULT_REDACT_KEYS)(
      event({ db: { pwd: "x1", tls: { passphrase: "x2" }, cwd: "/srv" } }),
    );
    expect(out.data).toEqual({ db: { pwd: REDACTED, tls: { passphrase: REDACTED }, cwd: "/srv" } });
  });

  it("redacts Azure's account and subscription keys, app, auth and master keys, JWTs, *_KEY variables, pass and disguised names by default", () => {
    const out = createKeyRedactor(DEFAULT_REDACT_KEYS)(
      event({
        storage: { accountKey: "x1" },
        headers: { "Ocp-Apim-Subscription-Key": "x2", "X-Auth-Key": "x3" },
        account: "acme",
        env: { AZURE_OPENAI_KEY: "x4", APP_KEY: "x5", sort_key: "name", masterKey: "x6", jwt: "x7" },
        transport: { auth: { user: "bot", pass: "x8" }, author: "ada" },
        smtp: { user: "bot", pass: "x9", passage: "kept" },
        ａｐｉ_ｋｅｙ: "x10",
        "api\u200b_key": "x11",
      }),
    );
    expect(out.data).toEqual({
      storage: { accountKey: REDACTED },
      headers: { "Ocp-Apim-Subscription-Key": REDACTED, "X-Auth-Key": REDACTED },
      account: "acme",
      env: {
        AZURE_OPENAI_KEY: REDACTED,
        APP_KEY: REDACTED,
        sort_key: "name",
        masterKey: REDACTED,
        jwt: REDACTED,
      },
      transport: { auth: REDACTED, author: "ada" },
      smtp: { user: "bot", pass: REDACTED, passage: "kept" },
      ａｐｉ_ｋｅｙ: REDACTED,
      "api\u200b_key": REDACTED,
    });
  });

  it("scans adversarial text in one pass: runs of scheme or name characters cannot make it quadratic", () => {
    // Each of these took seconds at 64 KiB before (a pattern retried its start after every `-`, `.` or `_`);
    // at 1 MiB a quadratic scan would not end within the test's timeout.
    const n = 1 << 20;
    for (const text of [
      `${"a-".repeat(n / 2)}=x`,
      `${"sk-".repeat(n / 3)}`,
      `"${"a_".repeat(n / 2)}":"x"`,
      `${"a_".repeat(n / 2)}key: x`,
      `authorization: ${"a ".repeat(n / 2)}`,
      "api_key: [REDACTED] ".repeat(n / 20),
      `${"A_".repeat(n / 2)}KEY=x`,
      `${"a_".repeat(n / 2)}token = Abc123x`,
      'password="'.repeat(n / 10),
      `Cookie: ${"a=b;".repeat(n / 8)}`,
      " -u a:".repeat(n / 6),
      `${"a_".repeat(n / 2)}key%3Dx`,
      "HTTPBasicAuth('a', ".repeat(n / 19),
      `"password${"\\".repeat(n)}`,
      '"password":"'.repeat(n / 12),
    ]) {
      expect(typeof redactCredentialText(text)).toBe("string");
    }
  });
});
