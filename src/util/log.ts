// One line per event on stderr: `time level message key=value...`.
// Callers pass fields explicitly; nothing secret (auth, passwords) is ever a field.

export type Level = 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

// The managed plugin logs to stdout: Docker files a plugin's stderr lines as errors.
const toStdout = process.env.SWARMVOL_LOG_STDOUT === '1';
let threshold: number = order[(process.env.SWARMVOL_LOG_LEVEL as Level) ?? 'info'] ?? order.info;

export function setLogLevel(level: Level): void {
  threshold = order[level];
}

function format(value: unknown): string {
  const s = typeof value === 'string' ? value : JSON.stringify(value);
  return /[\s"=]/.test(s ?? '') ? JSON.stringify(s) : String(s);
}

function write(level: Level, message: string, fields?: Record<string, unknown>): void {
  if (order[level] < threshold) return;
  let line = `${new Date().toISOString()} ${level} ${message}`;
  if (fields) for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${format(v)}`;
  (toStdout ? process.stdout : process.stderr).write(line + '\n');
}

export const log = {
  debug: (m: string, f?: Record<string, unknown>) => write('debug', m, f),
  info: (m: string, f?: Record<string, unknown>) => write('info', m, f),
  warn: (m: string, f?: Record<string, unknown>) => write('warn', m, f),
  error: (m: string, f?: Record<string, unknown>) => write('error', m, f),
};
