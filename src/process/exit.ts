// How a child process ended, and what that means for the supervisor's own exit code.
import { constants as osConstants } from 'node:os';

/** A child's exit as Node reports it: a code, or the signal that killed it. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * The supervisor's exit code for an unexpected child exit: never 0 (the child was
 * meant to keep running); the child's own code, or 128 + signal number (shell convention).
 */
export function exitCodeForExit(exit: ProcessExit): number {
  if (exit.code !== null && exit.code > 0) return Math.min(exit.code, 255);
  if (exit.signal) {
    const signo = osConstants.signals[exit.signal];
    return signo ? 128 + signo : 1;
  }
  return 1;
}

/** "was killed by SIGKILL" / "exited with code 3", for messages. */
export function describeExit(exit: ProcessExit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code ?? 'unknown'}`;
}
