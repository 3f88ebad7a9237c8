/** A credential as a cloud adapter produces it. */
export interface Credentials {
  username?: string;
  /** The secret: a password, token or signed URL. Never logged, never put in events or error messages. */
  password: string;
  /** When the credential stops working (Date or epoch ms). Omit for non-expiring credentials. */
  expiresAt?: Date | number;
}

/** Fetches a fresh credential. Adapters implement this; the core's refresh-ahead cache wraps it. */
export type CredentialProvider = () => Promise<Credentials>;
