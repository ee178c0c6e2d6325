/**
 * A TCP proxy in front of a real server that can make it go away at an exact request: the k-th HTTP
 * request sent through it is not forwarded, every open connection is reset, and new connections are
 * reset too until the outage ends. A SIGKILL of the server cannot be timed to land between two given
 * requests of a client; this can, and leaves the (shared) server itself running.
 */
import net from 'node:net';

/** Request lines as HTTP/1.1 clients send them; SQL bodies do not contain one. */
const REQUEST_LINE = /(?:GET|POST|PUT|HEAD|DELETE) \/\S* HTTP\/1\.1\r\n/g;

export class OutageProxy {
  /** Requests seen since start (counted, whether forwarded or cut). */
  requests = 0;
  private cutAt: number | undefined;
  private downMs = 0;
  private downUntil = 0;
  private readonly sockets = new Set<net.Socket>();

  private readonly server = net.createServer((client) => this.accept(client));
  /** Set by start(). */
  url = '';

  private constructor(private readonly upstream: { host: string; port: number }) {}

  static async start(target: string): Promise<OutageProxy> {
    const url = new URL(target);
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const proxy = new OutageProxy({ host: url.hostname, port });
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    const { port: own } = proxy.server.address() as net.AddressInfo;
    proxy.url = `${url.protocol}//127.0.0.1:${own}`;
    return proxy;
  }

  /** The request numbered `request` (1-based, counted from now) starts an outage of `downMs`. */
  cutAtRequest(request: number, downMs: number): void {
    this.requests = 0;
    this.cutAt = request;
    this.downMs = downMs;
  }

  /** Whether the outage asked for has happened. */
  get cut(): boolean {
    return this.cutAt !== undefined && this.requests >= this.cutAt;
  }

  private accept(client: net.Socket): void {
    if (Date.now() < this.downUntil) {
      client.resetAndDestroy();
      return;
    }
    const server = net.connect(this.upstream.port, this.upstream.host);
    this.sockets.add(client).add(server);
    const forget = () => {
      client.destroy();
      server.destroy();
      this.sockets.delete(client);
      this.sockets.delete(server);
    };
    client.on('error', forget).on('close', forget);
    server.on('error', forget).on('close', forget);
    server.pipe(client);
    // A request line split across two chunks is found with the next one: the unfinished line is kept.
    let tail = '';
    client.on('data', (chunk: Buffer) => {
      const text = tail + chunk.toString('latin1');
      const found = text.match(REQUEST_LINE)?.length ?? 0;
      // Whatever follows the last line break (a request line ends with one), bounded.
      const lineEnd = text.lastIndexOf('\r\n');
      tail = (lineEnd < 0 ? text : text.slice(lineEnd + 2)).slice(-8192);
      const before = this.requests;
      this.requests += found;
      if (this.cutAt !== undefined && before < this.cutAt && this.requests >= this.cutAt) {
        this.downUntil = Date.now() + this.downMs;
        for (const s of this.sockets) s.resetAndDestroy();
        this.sockets.clear();
        return;
      }
      server.write(chunk);
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
