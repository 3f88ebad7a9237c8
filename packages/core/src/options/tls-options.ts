import type { ConnectionOptions, KeyObject, PxfObject } from "node:tls";
import { type AnySchema, type Schema, type Shape, v } from "./schema";

/**
 * Keys of Node's `tls.ConnectionOptions` handed to `tls.connect` as they are (Node checks their values); the
 * keys below them are checked here too. Together they are exactly the keys of `ConnectionOptions` in the
 * `@types/node` version the packages build with, or the assertion below fails to compile.
 */
const NODE_CHECKED_KEYS = [
  "host",
  "port",
  "path",
  "socket",
  "checkServerIdentity",
  "session",
  "minDHSize",
  "lookup",
  "timeout",
  "pskCallback",
  "ALPNCallback",
  "allowPartialTrustChain",
  "certificateCompression",
  "sigalgs",
  "ciphers",
  "clientCertEngine",
  "dhparam",
  "ecdhCurve",
  "honorCipherOrder",
  "privateKeyEngine",
  "privateKeyIdentifier",
  "secureOptions",
  "secureProtocol",
  "sessionIdContext",
  "ticketKeys",
  "sessionTimeout",
  "secureContext",
  "enableTrace",
  "requestCert",
  "ALPNProtocols",
  "SNICallback",
  "requestOCSP",
] as const satisfies readonly (keyof ConnectionOptions)[];

type CheckedHere =
  | "servername"
  | "rejectUnauthorized"
  | "minVersion"
  | "maxVersion"
  | "passphrase"
  | "ca"
  | "cert"
  | "crl"
  | "key"
  | "pfx";
type Unlisted = Exclude<keyof ConnectionOptions, (typeof NODE_CHECKED_KEYS)[number] | CheckedHere>;
/** Compiles only when every key of `ConnectionOptions` is listed above or checked below. */
const everyKeyListed: [Unlisted] extends [never] ? true : { unlisted: Unlisted } = true;

const tlsVersion = v.oneOf(["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]);

const isPem = (value: unknown): boolean => typeof value === "string" || value instanceof Uint8Array;
const pem = v.custom<string | Buffer>("PEM text or a Buffer", isPem);

/** PEM text or its bytes, or a list of them (`ca`, `cert`, `crl`). */
const pemSchema = <T>() =>
  v
    .custom<T>(
      "PEM text or a Buffer, or a list of them",
      (value) => isPem(value) || (Array.isArray(value) && value.every(isPem)),
    )
    .optional();

/**
 * `key` and `pfx`: PEM text or its bytes, or a list whose items may also be Node's `{ pem, passphrase }` /
 * `{ buf, passphrase }` objects, whose keys are checked like any option's (`pasphrase` is a typo, not a key
 * Node ignores). Checked here because the wrong kind (a number, a file path object) only fails when a
 * connection opens, as an error that retrying cannot fix.
 */
const keySchema = <T>(item: AnySchema) =>
  (v.union(pem, v.array(v.union(pem, item))) as unknown as Schema<T>).optional();

const keyObject = v.object<KeyObject>(
  { pem, passphrase: v.string().optional() },
  { expected: "a { pem, passphrase } object" },
);
const pfxObject = v.object<PxfObject>(
  { buf: pem, passphrase: v.string().optional() },
  { expected: "a { buf, passphrase } object" },
);

/**
 * Node's `tls.ConnectionOptions` as the Redis and RabbitMQ sinks accept them for `tls`: a misspelled key
 * (`rejectUnauthorised`, `servrname`) is rejected like any other option; the values of Node's own keys are
 * passed to `tls.connect`, which checks them, except the few checked here.
 */
export const tlsConnectionOptionsSchema = v.object<ConnectionOptions>(
  {
    ...(Object.fromEntries(
      NODE_CHECKED_KEYS.map((key) => [key, v.unchecked(`a value tls.connect accepts for ${key}`).optional()]),
    ) as unknown as Shape<Pick<ConnectionOptions, (typeof NODE_CHECKED_KEYS)[number]>>),
    servername: v.string({ min: 1 }).optional(),
    rejectUnauthorized: v.boolean().optional(),
    minVersion: tlsVersion.optional(),
    maxVersion: tlsVersion.optional(),
    passphrase: v.string().optional(),
    ca: pemSchema<NonNullable<ConnectionOptions["ca"]>>(),
    cert: pemSchema<NonNullable<ConnectionOptions["cert"]>>(),
    crl: pemSchema<NonNullable<ConnectionOptions["crl"]>>(),
    key: keySchema<NonNullable<ConnectionOptions["key"]>>(keyObject),
    pfx: keySchema<NonNullable<ConnectionOptions["pfx"]>>(pfxObject),
  },
  { expected: "TLS options (tls.ConnectionOptions)" },
);

void everyKeyListed;
