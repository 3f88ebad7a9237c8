/** Types of tcp-proxy.mjs, for the TypeScript tests that use it. */
export interface TcpProxy {
  /** The local port clients connect to (stable across close/open). */
  readonly port: number;
  readonly isOpen: boolean;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Stops listening and cuts every forwarded connection. */
  close(): Promise<void>;
  /** Listens again on the same port. */
  open(): Promise<void>;
}

export declare function startTcpProxy(options: {
  readonly host?: string;
  readonly port: number;
  readonly listenPort?: number;
}): Promise<TcpProxy>;
