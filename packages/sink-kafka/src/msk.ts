/**
 * Amazon MSK: IAM (SASL/OAUTHBEARER with `aws-msk-iam-sasl-signer-js` tokens), SCRAM, TLS, MSK Serverless,
 * and broker discovery from a cluster ARN (`@aws-sdk/client-kafka`). Both SDKs are optional peer
 * dependencies, loaded on first use.
 * @module
 */
import { ConfigurationError } from "@streamll/core";
import { awsCredentialsSchema, loadOptionalPackages, v, validateOptions } from "@streamll/core/internal";
import {
  type KafkaConnectionOptions,
  type KafkaOAuthTokenProvider,
  type KafkaTlsOptions,
  kafkaConnectionOptionsSchema,
  kafkaTlsOptionsSchema,
} from "./kafka-connection";

/** AWS credentials, as the AWS SDK's credential providers return them. */
export interface AwsCredentials {
  readonly accessKeyId: string;
  /** Never logged. */
  readonly secretAccessKey: string;
  /** Never logged. */
  readonly sessionToken?: string;
  /** When temporary credentials expire; MSK tokens never outlive them. */
  readonly expiration?: Date;
}

/** A function returning AWS credentials, e.g. `fromNodeProviderChain()` from `@aws-sdk/credential-providers`. */
export type AwsCredentialsProvider = () => Promise<AwsCredentials>;

/** Where MSK IAM tokens get their AWS credentials. */
export interface MskIamCredentialOptions {
  /** AWS region of the cluster, e.g. `eu-west-1`. Tokens are signed for `kafka.<region>.amazonaws.com`. */
  region: string;
  /**
   * Credentials or a credentials provider. Default: the AWS default chain (environment, shared config and
   * SSO, web identity, ECS and EC2 roles). Whatever is used is created once and kept for the client's life.
   */
  credentials?: AwsCredentials | AwsCredentialsProvider;
  /** Use this profile from the shared AWS config files instead of the default chain. */
  profile?: string;
  /** Assume this role (STS AssumeRole) with the default chain's credentials. */
  roleArn?: string;
  /**
   * Session name for `roleArn`. Default `streamll-msk`. Keep it stable: a different name is a different
   * principal, and the broker refuses re-authentication with "Cannot change principals during
   * re-authentication".
   */
  roleSessionName?: string;
}

/** Options of {@link mskIam}. */
export interface MskIamOptions extends MskIamCredentialOptions {
  /** IAM bootstrap brokers (port 9098, public 9198), or an async function such as {@link mskBrokersFromArn}. */
  brokers: KafkaConnectionOptions["brokers"];
  /** Refresh tokens this long before they expire. Default 60 000 ms. */
  refreshAheadMs?: number;
}

/** Ports of the MSK listener per authentication, inside the VPC and with public access. */
export const MSK_PORTS = Object.freeze({
  plaintext: 9092,
  tls: 9094,
  scram: 9096,
  iam: 9098,
  publicTls: 9194,
  publicScram: 9196,
  publicIam: 9198,
});

/** MSK Serverless accepts records up to 8 MiB. */
export const MSK_SERVERLESS_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

const REGION = v.string({ pattern: /^[a-z]{2}(-[a-z]+)+-\d+$/, expected: "an AWS region such as us-east-1" });

const credentialsSchema = v.union(
  awsCredentialsSchema<AwsCredentials>(),
  v.fn<AwsCredentialsProvider>("a credentials provider function"),
);

const brokersSchema = kafkaConnectionOptionsSchema.shape.brokers;

const mskIamCredentialOptionsSchema = v
  .object<MskIamCredentialOptions>({
    region: REGION,
    credentials: credentialsSchema.optional(),
    profile: v.string({ min: 1 }).optional(),
    roleArn: v
      .string({ pattern: /^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, expected: "an IAM role ARN" })
      .optional(),
    roleSessionName: v.string({ min: 2, max: 64 }).optional(),
  })
  .refine((options, report) => {
    // Only one source of credentials is used; naming two would silently ignore one.
    const given = (["credentials", "profile", "roleArn"] as const).filter(
      (key) => options[key] !== undefined,
    );
    if (given.length > 1) report(`use only one of ${given.join(", ")}`, given[1]);
    if (
      options.roleSessionName !== undefined &&
      options.roleArn === undefined &&
      options.credentials !== undefined
    ) {
      report("applies to the default chain or roleArn, not to given credentials", "roleSessionName");
    }
  });

const mskIamOptionsSchema = mskIamCredentialOptionsSchema.extend<MskIamOptions>({
  brokers: brokersSchema,
  refreshAheadMs: v.number({ min: 0 }).optional(),
});

const mskServerlessOptionsSchema = mskIamCredentialOptionsSchema.extend<MskServerlessOptions>({
  bootstrapServer: v.string({ pattern: /^[^\s:/]+:\d+$/, expected: "host:9098" }),
  refreshAheadMs: v.number({ min: 0 }).optional(),
});

type SignerCredentialsProvider = () => Promise<AwsCredentials>;

/** Builds the one credentials provider used for every token of a client. */
async function createCredentialsProvider(
  options: MskIamCredentialOptions,
): Promise<SignerCredentialsProvider> {
  const { credentials } = options;
  if (typeof credentials === "function") return credentials;
  if (credentials !== undefined) {
    const fixed = credentials;
    return async () => fixed;
  }
  const [providers] = await loadOptionalPackages("MSK IAM authentication", [
    ["aws-msk-iam-sasl-signer-js", () => import("aws-msk-iam-sasl-signer-js/dist/mskCredentialProvider.js")],
  ]);
  if (options.profile !== undefined) return providers.getCredentialsFromProfile(options.profile);
  if (options.roleArn !== undefined) {
    return providers.getCredentialsFromRole(
      options.region,
      options.roleArn,
      options.roleSessionName ?? "streamll-msk",
    );
  }
  return providers.getDefaultCredentials({
    region: options.region,
    awsRoleSessionName: options.roleSessionName ?? "streamll-msk",
  } as Parameters<typeof providers.getDefaultCredentials>[0]);
}

/**
 * A token provider for MSK IAM: each call signs a fresh `kafka-cluster:Connect` token with
 * `generateAuthTokenFromCredentialsProvider` (valid 15 minutes, shorter when the credentials expire
 * sooner). The credentials provider is created on the first call and reused. The sink's token cache calls
 * this only shortly before the previous token expires.
 */
export function createMskIamTokenProvider(options: MskIamCredentialOptions): KafkaOAuthTokenProvider {
  validateOptions("createMskIamTokenProvider()", mskIamCredentialOptionsSchema, options);
  const region = options.region;
  let provider: Promise<SignerCredentialsProvider> | undefined;
  return async () => {
    provider ??= createCredentialsProvider(options);
    provider.catch(() => {
      provider = undefined;
    });
    const credentials = await provider;
    const [signer] = await loadOptionalPackages("MSK IAM authentication", [
      ["aws-msk-iam-sasl-signer-js", () => import("aws-msk-iam-sasl-signer-js")],
    ]);
    const { token, expiryTime } = await signer.generateAuthTokenFromCredentialsProvider({
      region,
      awsCredentialsProvider: credentials,
    });
    return { token, expiresAt: expiryTime };
  };
}

/**
 * Connection settings for MSK with IAM access control: TLS, SASL/OAUTHBEARER with signed tokens cached until
 * `refreshAheadMs` before expiry (kafkajs asks on every handshake; the signer is not called each time).
 * This is MSK's IAM mechanism; kafkajs's built-in `aws` mechanism is a different protocol MSK does not speak.
 */
export function mskIam(options: MskIamOptions): KafkaConnectionOptions {
  validateOptions("mskIam()", mskIamOptionsSchema, options);
  const { brokers: _brokers, refreshAheadMs: _refreshAheadMs, ...credentials } = options;
  const tokenProvider = createMskIamTokenProvider(credentials);
  return {
    brokers: options.brokers,
    tls: true,
    sasl: {
      mechanism: "oauthbearer",
      tokenProvider,
      ...(options.refreshAheadMs === undefined ? {} : { refreshAheadMs: options.refreshAheadMs }),
    },
  };
}

/** Options of {@link mskServerless}. */
export interface MskServerlessOptions extends MskIamCredentialOptions {
  /** The cluster's bootstrap server, `boot-xxxxxxxx.c1.kafka-serverless.<region>.amazonaws.com:9098`. */
  bootstrapServer: string;
  /** Refresh tokens this long before they expire. Default 60 000 ms. */
  refreshAheadMs?: number;
}

/**
 * MSK Serverless: IAM only on port 9098. Messages may be up to 8 MiB there, so `maxMessageBytes` is raised
 * to that (the topic's own `max.message.bytes` still applies).
 */
export function mskServerless(options: MskServerlessOptions): KafkaConnectionOptions {
  validateOptions("mskServerless()", mskServerlessOptionsSchema, options);
  const { bootstrapServer, ...rest } = options;
  return {
    ...mskIam({ ...rest, brokers: [bootstrapServer] }),
    maxMessageBytes: MSK_SERVERLESS_MAX_MESSAGE_BYTES,
  };
}

/** Options of {@link mskScram}. */
export interface MskScramOptions {
  /** SCRAM bootstrap brokers (port 9096, public 9196). */
  brokers: KafkaConnectionOptions["brokers"];
  /** User from the AWS Secrets Manager secret associated with the cluster. */
  username: string;
  /** Never logged. */
  password: string;
}

const mskScramOptionsSchema = v.object<MskScramOptions>({
  brokers: brokersSchema,
  username: v.string({ min: 1 }),
  password: v.string({ min: 1 }),
});

/** MSK with SASL/SCRAM (MSK supports SCRAM-SHA-512 only), always over TLS. */
export function mskScram(options: MskScramOptions): KafkaConnectionOptions {
  validateOptions("mskScram()", mskScramOptionsSchema, options);
  return {
    brokers: options.brokers,
    tls: true,
    sasl: { mechanism: "scram-sha-512", username: options.username, password: options.password },
  };
}

/** Options of {@link mskTls}. */
export interface MskTlsOptions {
  /** TLS bootstrap brokers (port 9094, public 9194). */
  brokers: KafkaConnectionOptions["brokers"];
  /**
   * Client certificate and key issued by the cluster's AWS Private CA, for mutual TLS authentication. Omit
   * both for TLS encryption only (clusters with unauthenticated access). What `readTlsFiles()` returns fits.
   */
  tls?: MskTlsFiles;
}

/** The `tls` of {@link mskTls}: the client certificate and what `readTlsFiles()` sets besides it. */
type MskTlsFiles = Pick<
  KafkaTlsOptions,
  "cert" | "key" | "passphrase" | "ca" | "servername" | "rejectUnauthorized"
>;

const mskTlsOptionsSchema = v.object<MskTlsOptions>({
  brokers: brokersSchema,
  tls: v
    .object<MskTlsFiles>({
      cert: kafkaTlsOptionsSchema.shape.cert,
      key: kafkaTlsOptionsSchema.shape.key,
      passphrase: kafkaTlsOptionsSchema.shape.passphrase,
      ca: kafkaTlsOptionsSchema.shape.ca,
      servername: kafkaTlsOptionsSchema.shape.servername,
      rejectUnauthorized: kafkaTlsOptionsSchema.shape.rejectUnauthorized,
    })
    .refine((tls, report) => {
      if ((tls.cert === undefined) !== (tls.key === undefined)) {
        report("cert and key must be given together", tls.cert === undefined ? "cert" : "key");
      }
    })
    .optional(),
});

/** MSK over TLS, optionally authenticated with a client certificate. */
export function mskTls(options: MskTlsOptions): KafkaConnectionOptions {
  validateOptions("mskTls()", mskTlsOptionsSchema, options);
  return { brokers: options.brokers, tls: options.tls === undefined ? true : { ...options.tls } };
}

/** Which bootstrap string of `GetBootstrapBrokers` to use. */
export type MskAuthentication = "iam" | "scram" | "tls" | "plaintext";

/** Options of {@link discoverMskBrokers}. */
export interface MskDiscoveryOptions {
  /** `arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>`. */
  clusterArn: string;
  /** The authentication the client uses; selects the matching bootstrap string. */
  authentication: MskAuthentication;
  /** Use the public-access bootstrap string (ports 91xx). Not available for `plaintext`. Default `false`. */
  publicAccess?: boolean;
  /** API region. Default: the ARN's region. */
  region?: string;
  /** AWS credentials for the MSK API call. Default: the AWS SDK's default chain. */
  credentials?: AwsCredentials | AwsCredentialsProvider;
  /** MSK API endpoint, e.g. a VPC endpoint or a local test server. Default: the public regional endpoint. */
  endpoint?: string;
}

const BOOTSTRAP_FIELDS = {
  iam: ["BootstrapBrokerStringSaslIam", "BootstrapBrokerStringPublicSaslIam"],
  scram: ["BootstrapBrokerStringSaslScram", "BootstrapBrokerStringPublicSaslScram"],
  tls: ["BootstrapBrokerStringTls", "BootstrapBrokerStringPublicTls"],
  plaintext: ["BootstrapBrokerString", undefined],
} as const satisfies Record<MskAuthentication, readonly [string, string | undefined]>;

const ARN_PATTERN = /^arn:aws[a-z-]*:kafka:([a-z0-9-]+):\d{12}:cluster\/[^/]+\/[^/]+$/;

const mskDiscoveryOptionsSchema = v
  .object<MskDiscoveryOptions>({
    clusterArn: v.string({
      pattern: ARN_PATTERN,
      expected: "an MSK cluster ARN (arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>)",
    }),
    authentication: v.oneOf(["iam", "scram", "tls", "plaintext"]),
    publicAccess: v.boolean().optional(),
    region: REGION.optional(),
    credentials: credentialsSchema.optional(),
    endpoint: v.string({ pattern: /^https?:\/\/\S+$/, expected: "an http(s) URL" }).optional(),
  })
  .refine((options, report) => {
    if (options.publicAccess === true && options.authentication === "plaintext") {
      report("MSK public access needs TLS, SCRAM or IAM; plaintext is VPC-only", "publicAccess");
    }
  });

/**
 * Looks up a cluster's bootstrap brokers with `GetBootstrapBrokers` and returns those matching the
 * authentication (`iam` → `BootstrapBrokerStringSaslIam`, public → `...PublicSaslIam`, and so on).
 * @throws ConfigurationError for an invalid ARN, a missing `@aws-sdk/client-kafka`, or a cluster without
 *   brokers for that authentication (the message names the field).
 */
export async function discoverMskBrokers(options: MskDiscoveryOptions): Promise<string[]> {
  validateOptions("discoverMskBrokers()", mskDiscoveryOptionsSchema, options);
  const arn = options.clusterArn;
  const fields = BOOTSTRAP_FIELDS[options.authentication];
  const field = (options.publicAccess ? fields[1] : fields[0]) as string;
  const region = options.region ?? (ARN_PATTERN.exec(arn)?.[1] as string);
  const [sdk] = await loadOptionalPackages("MSK broker discovery", [
    ["@aws-sdk/client-kafka", () => import("@aws-sdk/client-kafka")],
  ]);
  const client = new sdk.KafkaClient({
    region,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
  });
  try {
    const output = await client.send(new sdk.GetBootstrapBrokersCommand({ ClusterArn: arn }));
    const value = (output as unknown as Record<string, unknown>)[field];
    if (typeof value !== "string" || value.trim() === "") {
      throw new ConfigurationError(
        `cluster ${arn} has no ${field}: enable ${options.authentication}${options.publicAccess ? " with public access" : ""} on the cluster or pick another authentication`,
        [{ path: "authentication", message: `${field} is empty` }],
      );
    }
    return value
      .split(",")
      .map((broker) => broker.trim())
      .filter((broker) => broker !== "");
  } finally {
    client.destroy();
  }
}

/**
 * `brokers` for the sink or reader that discovers them from the cluster ARN on every (re)connect, so a
 * broker replacement is picked up without a redeploy.
 */
export function mskBrokersFromArn(options: MskDiscoveryOptions): () => Promise<readonly string[]> {
  validateOptions("mskBrokersFromArn()", mskDiscoveryOptionsSchema, options);
  return () => discoverMskBrokers(options);
}
