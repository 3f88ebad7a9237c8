import type { ConnectionOptions } from "node:tls";
import { type Shape, v } from "./schema";

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
/**
 * PEM text or its bytes, or a list of them (`ca`, `cert`, `crl`); `key` and `pfx` lists may also hold Node's
 * `{ pem, passphrase }` / `{ buf, passphrase }` objects. Checked here because the wrong kind (a number, a file
 * path object) only fails when a connection opens, as an error that retrying cannot fix.
 */
const pemSchema = <T>(withObjects: boolean) =>
  v
    .custom<T>(
      withObjects
        ? "PEM text or a Buffer, or a list of them (or of { pem | buf, passphrase } objects)"
        : "PEM text or a Buffer, or a list of them",
      (value) =>
        isPem(value) ||
        (Array.isArray(value) &&
          value.every((item) => isPem(item) || (withObjects && typeof item === "object" && item !== null))),
    )
    .optional();

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
    ca: pemSchema<NonNullable<ConnectionOptions["ca"]>>(false),
    cert: pemSchema<NonNullable<ConnectionOptions["cert"]>>(false),
    crl: pemSchema<NonNullable<ConnectionOptions["crl"]>>(false),
    key: pemSchema<NonNullable<ConnectionOptions["key"]>>(true),
    pfx: pemSchema<NonNullable<ConnectionOptions["pfx"]>>(true),
  },
  { expected: "TLS options (tls.ConnectionOptions)" },
);

void everyKeyListed;
