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
  "ca",
  "cert",
  "certificateCompression",
  "sigalgs",
  "ciphers",
  "clientCertEngine",
  "crl",
  "dhparam",
  "ecdhCurve",
  "honorCipherOrder",
  "key",
  "privateKeyEngine",
  "privateKeyIdentifier",
  "pfx",
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

type CheckedHere = "servername" | "rejectUnauthorized" | "minVersion" | "maxVersion" | "passphrase";
type Unlisted = Exclude<keyof ConnectionOptions, (typeof NODE_CHECKED_KEYS)[number] | CheckedHere>;
/** Compiles only when every key of `ConnectionOptions` is listed above or checked below. */
const everyKeyListed: [Unlisted] extends [never] ? true : { unlisted: Unlisted } = true;

const tlsVersion = v.oneOf(["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]);

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
  },
  { expected: "TLS options (tls.ConnectionOptions)" },
);

void everyKeyListed;
