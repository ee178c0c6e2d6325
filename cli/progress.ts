/**
 * A one-line progress bar with rate and ETA on a TTY; elsewhere a log line every few seconds, so
 * that CI logs and files stay readable.
 */
export class Progress {
  private readonly started = Date.now();
  private lastLine = 0;
  private readonly tty = process.stderr.isTTY === true;

  constructor(
    private readonly label: string,
    private readonly total: number,
  ) {}

  update(done: number, rows: number): void {
    const now = Date.now();
    if (!this.tty && now - this.lastLine < 5_000) return;
    this.lastLine = now;
    const seconds = Math.max(0.001, (now - this.started) / 1000);
    const rate = rows / seconds;
    const fraction = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const eta = fraction > 0 && fraction < 1 ? (seconds / fraction) * (1 - fraction) : 0;
    const width = 30;
    const bar = '█'.repeat(Math.round(fraction * width)).padEnd(width, '░');
    const line = `${this.label} ${bar} ${(fraction * 100).toFixed(1)}%  ${rows} rows  ${rate.toFixed(0)} rows/s  ETA ${eta.toFixed(0)}s`;
    if (this.tty) process.stderr.write(`\r${line}\x1b[K`);
    else process.stderr.write(`${line}\n`);
  }

  done(): void {
    if (this.tty) process.stderr.write('\n');
  }
}
