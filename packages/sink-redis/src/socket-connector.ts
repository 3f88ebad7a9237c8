import { createConnection, type NetConnectOpts, type Socket } from "node:net";
import {
  type ConnectionOptions,
  createSecureContext,
  type SecureContext,
  type TLSSocket,
  connect as tlsConnect,
} from "node:tls";
import { AbstractConnector } from "ioredis";

/** The socket options ioredis hands a connector (a subset of `RedisOptions`). */
interface ConnectorOptions {
  host?: string;
  port?: number;
  path?: string;
  family?: number;
  tls?: ConnectionOptions;
  disconnectTimeout?: number;
}

/**
 * Errors Node threw while building the TLS secure context from the user's `tls` options (a PKCS#12 or key whose
 * passphrase is wrong, a `pfx` that is not PKCS#12, …). Many carry no `code` ("mac verify failure"), so they are
 * recognised by where they were thrown rather than by their code.
 */
const secureContextErrors = new WeakSet<object>();

/**
 * True for an error Node threw while building the TLS secure context from the `tls` options: the same options
 * fail the same way on every attempt, so no retry can help.
 */
export function isSecureContextError(error: unknown): boolean {
  return typeof error === "object" && error !== null && secureContextErrors.has(error);
}

/** ioredis' default for `disconnectTimeout`. */
const DISCONNECT_TIMEOUT_MS = 2_000;

/**
 * Opens the TCP or TLS socket for one ioredis connection, like ioredis' own standalone connector, but keeps an
 * `error` listener on the socket for its whole life.
 *
 * ioredis listens for a socket's `error` with `once`: a socket that fails twice has no listener the second
 * time, and Node turns that into an uncaught exception that ends the host process. A TLS socket does exactly
 * that when its handshake fails or is cut short (host name mismatch, unknown CA, closed while handshaking) and
 * the server's alert arrives after the first error. The first error still reaches ioredis (and the sink's
 * `onError`); later ones on a socket ioredis already gave up are dropped here.
 */
export class SocketErrorGuardConnector extends AbstractConnector {
  readonly #options: ConnectorOptions;
  /** Built from the `tls` options on the first connect and reused by every reconnect of this client. */
  #secureContext: SecureContext | undefined;

  constructor(options: unknown) {
    const resolved = (options ?? {}) as ConnectorOptions;
    super(resolved.disconnectTimeout ?? DISCONNECT_TIMEOUT_MS);
    this.#options = resolved;
  }

  connect(): Promise<Socket | TLSSocket> {
    const options = this.#options;
    this.connecting = true;
    const target: NetConnectOpts =
      options.path !== undefined && options.path !== ""
        ? { path: options.path }
        : {
            port: options.port ?? 6379,
            ...(options.host == null ? {} : { host: options.host }),
            ...(options.family == null ? {} : { family: options.family }),
          };
    // Resolved on the next tick, as ioredis' connector does: ioredis attaches its handlers synchronously after
    // the promise settles, before any socket event can fire.
    return new Promise((resolve, reject) => {
      process.nextTick(() => {
        if (!this.connecting) {
          reject(new Error("Connection is closed."));
          return;
        }
        let tls: ConnectionOptions | undefined;
        try {
          tls = this.#tlsOptions();
        } catch (error) {
          if (typeof error === "object" && error !== null) secureContextErrors.add(error);
          reject(error);
          return;
        }
        let stream: Socket | TLSSocket;
        try {
          stream =
            tls === undefined
              ? createConnection(target)
              : tlsConnect({ ...(target as ConnectionOptions), ...tls });
        } catch (error) {
          reject(error);
          return;
        }
        let failed = false;
        stream.on("error", (error: Error) => {
          // ioredis reads the first error of the current socket when the socket died before it got it.
          if (failed) return;
          failed = true;
          this.firstError = error;
        });
        this.stream = stream;
        this.onSocket(stream);
        resolve(stream);
      });
    });
  }

  /**
   * The `tls` options with a secure context built from them up front, so that an error Node throws for the
   * key, certificate, PKCS#12 or passphrase is told apart from one of the connection itself. A `secureContext`
   * the user passed is used as it is.
   */
  #tlsOptions(): ConnectionOptions | undefined {
    const tls = this.#options.tls;
    if (tls === undefined || tls.secureContext !== undefined) return tls;
    this.#secureContext ??= createSecureContext(tls);
    return { ...tls, secureContext: this.#secureContext };
  }

  /**
   * Closes the socket at once. ioredis' own `disconnect` ends it and arms a referenced `disconnectTimeout`
   * timer cleared only by a later `close` event: a socket that had already closed (server down) kept the host
   * process alive for 2 s after `close()`, and a peer that never answers kept it alive until that timer
   * destroyed the socket (ioredis' socket-timeout timer is cleared only on `close` too). Nothing is lost by
   * destroying: `disconnect` comes after QUIT was answered, or when the connection is given up anyway.
   */
  override disconnect(): void {
    this.connecting = false;
    this.stream?.destroy();
  }

  /** Called with every socket this connector opens. */
  protected onSocket(_socket: Socket | TLSSocket): void {}
}

/** How a {@link trackingConnector}'s sockets treat the host process's event loop. */
export interface TrackingOptions {
  /**
   * `false` unrefs every socket the connector opens (reconnects and cluster node connections included), so an
   * open connection alone never keeps the host process alive: a sink's program ends once its own work is done
   * (core flushes pending events on `beforeExit`). `true` (readers, the CLI) keeps the default: a consumer's
   * connection holds the process while it runs.
   */
  readonly keepProcessAlive: boolean;
}

/**
 * A {@link SocketErrorGuardConnector} that also keeps each socket it opens in `open` until the socket closes.
 * ioredis opens connections its `disconnect()` does not reach: a cluster's slot refresh runs on a duplicate
 * connection that, against a peer that never answers, lives until `slotsRefreshTimeout` and keeps the host
 * process alive that long after `close()`. The owner destroys what is left in `open` when it closes.
 */
export function trackingConnector(
  open: Set<Socket | TLSSocket>,
  options: TrackingOptions = { keepProcessAlive: true },
): typeof SocketErrorGuardConnector {
  return class TrackingConnector extends SocketErrorGuardConnector {
    protected override onSocket(socket: Socket | TLSSocket): void {
      open.add(socket);
      socket.once("close", () => open.delete(socket));
      // Every connection attempt opens a new socket here, so each reconnect is unref'd as well. A TLS socket
      // forwards unref to the TCP socket under it.
      if (!options.keepProcessAlive) socket.unref();
    }
  };
}
