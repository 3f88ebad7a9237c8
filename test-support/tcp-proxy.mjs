// A TCP forwarder that a test opens and closes to play a broker outage without touching the shared broker:
// closed, it refuses new connections and cuts the open ones (what a dead broker or a network partition looks
// like to a client); opened again, it listens on the same port. Used by the sinks' outage tests.
import { connect, createServer } from "node:net";

export async function startTcpProxy({ host = "127.0.0.1", port: targetPort, listenPort = 0 }) {
  const sockets = new Set();
  let server;
  let port = listenPort;
  let isOpen = false;
  let connections = 0;

  const listen = () =>
    new Promise((resolve, reject) => {
      server = createServer((client) => {
        connections++;
        const upstream = connect({ host, port: targetPort });
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on("error", () => {
            client.destroy();
            upstream.destroy();
          });
          socket.on("close", () => {
            sockets.delete(socket);
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream).pipe(client);
      });
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        port = server.address().port;
        isOpen = true;
        resolve();
      });
    });

  await listen();
  return {
    get port() {
      return port;
    },
    get isOpen() {
      return isOpen;
    },
    /** Connections accepted so far. */
    get connections() {
      return connections;
    },
    /** Stops listening and cuts every forwarded connection. */
    async close() {
      if (!isOpen) return;
      isOpen = false;
      const closed = new Promise((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
    /** Listens again on the same port. */
    async open() {
      if (isOpen) return;
      await listen();
    },
  };
}
