import { createConnection, type NetConnectOpts, type Socket } from "node:net";
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from "node:tls";
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
        let stream: Socket | TLSSocket;
        try {
          stream =
            options.tls === undefined
              ? createConnection(target)
              : tlsConnect({ ...(target as ConnectionOptions), ...options.tls });
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
