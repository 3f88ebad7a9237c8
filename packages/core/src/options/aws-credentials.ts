import { type Schema, v } from "./schema";

/** Every field the AWS SDK v3 puts into resolved credentials (`AwsCredentialIdentity` and its metadata). */
interface AwsCredentialFields {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
  credentialScope?: string;
  accountId?: string;
  $source?: unknown;
}

/**
 * Fixed AWS credentials for the adapters that sign with them (MSK IAM, ElastiCache IAM). Any key outside what
 * the SDK's credentials hold is rejected with the nearest name: a misspelled `sesionToken` would otherwise sign
 * without the session token, and the service would refuse the temporary credentials much later.
 * Typed by the caller, whose own credentials type is a subset of these fields.
 */
export function awsCredentialsSchema<
  T extends { accessKeyId: string; secretAccessKey: string },
>(): Schema<T> {
  const schema = v.object<AwsCredentialFields>(
    {
      accessKeyId: v.string({ min: 1 }),
      secretAccessKey: v.string({ min: 1 }),
      sessionToken: v.string().optional(),
      expiration: v.instance(Date, "a Date").optional(),
      credentialScope: v.string().optional(),
      accountId: v.string().optional(),
      $source: v.passthrough<unknown>("the AWS SDK's own metadata, unchecked").optional(),
    },
    { expected: "AWS credentials { accessKeyId, secretAccessKey, sessionToken? }" },
  );
  return schema as unknown as Schema<T>;
}
