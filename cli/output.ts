/** Terminal output helpers: colour only on a TTY and without NO_COLOR. */

const useColour = (stream: NodeJS.WriteStream): boolean =>
  Boolean(stream.isTTY) && process.env.NO_COLOR === undefined && process.env.TERM !== 'dumb';

function paint(code: number, text: string, stream: NodeJS.WriteStream = process.stdout): string {
  return useColour(stream) ? `\u001b[${code}m${text}\u001b[0m` : text;
}

export const style = {
  bold: (t: string) => paint(1, t),
  dim: (t: string) => paint(2, t),
  green: (t: string) => paint(32, t),
  yellow: (t: string) => paint(33, t),
  red: (t: string) => paint(31, t, process.stderr),
  cyan: (t: string) => paint(36, t),
};

/** A failure the CLI reports as one message and an exit code, without a stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    public readonly exitCode: number = 1,
  ) {
    super(message);
  }
}

/**
 * How meshform is run, in every command it suggests: `npx meshform` works in an app that installed the
 * package (its node_modules/.bin) and in meshform's own checkout (npm ≥ 9.1.2 runs a package's own bin:
 * npm/cli#5847), globally installed or not.
 */
export const MESHFORM = 'npx meshform';
