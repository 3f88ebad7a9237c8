import { readFileSync } from "node:fs";
import { ConfigurationError } from "@streamll/core";
import { v, validateOptions } from "@streamll/core/internal";
import type { KafkaTlsOptions } from "./kafka-connection";

/** PEM files for {@link readTlsFiles}. */
export interface KafkaTlsFiles {
  /** CA bundle that signed the brokers' certificates (self-managed clusters, Redpanda, Aiven). */
  caFile?: string;
  /** Client certificate for mutual TLS (e.g. Aiven's `service.cert`). */
  certFile?: string;
  /** Its private key (e.g. Aiven's `service.key`). */
  keyFile?: string;
  /** Passphrase of an encrypted key. Never logged. */
  passphrase?: string;
  /** Server name to verify, when it differs from the broker address. */
  servername?: string;
}

const tlsFilesSchema = v
  .object<KafkaTlsFiles>({
    caFile: v.string({ min: 1 }).optional(),
    certFile: v.string({ min: 1 }).optional(),
    keyFile: v.string({ min: 1 }).optional(),
    passphrase: v.string().optional(),
    servername: v.string({ min: 1 }).optional(),
  })
  .refine((files, report) => {
    if ((files.certFile === undefined) !== (files.keyFile === undefined)) {
      report(
        "certFile and keyFile must be given together",
        files.certFile === undefined ? "certFile" : "keyFile",
      );
    }
  });

function read(path: string, option: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigurationError(
      `tls ${option} ${path} cannot be read`,
      [{ path: option, message: "cannot be read" }],
      {
        cause: error,
      },
    );
  }
}

/**
 * Reads PEM files into `tls` options (verification stays on) for self-managed Kafka, Redpanda or
 * Aiven-style client certificates.
 * @throws ConfigurationError naming a file that cannot be read, or a certificate without its key.
 */
export function readTlsFiles(files: KafkaTlsFiles): KafkaTlsOptions {
  validateOptions("readTlsFiles()", tlsFilesSchema, files);
  const tls: KafkaTlsOptions = { rejectUnauthorized: true };
  if (files.caFile !== undefined) tls.ca = read(files.caFile, "caFile");
  if (files.certFile !== undefined) tls.cert = read(files.certFile, "certFile");
  if (files.keyFile !== undefined) tls.key = read(files.keyFile, "keyFile");
  if (files.passphrase !== undefined) tls.passphrase = files.passphrase;
  if (files.servername !== undefined) tls.servername = files.servername;
  return tls;
}
